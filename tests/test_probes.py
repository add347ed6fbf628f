"""Probes against an independent computation with plain torch.autograd, and the histogram bookkeeping."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from engine_helpers import tiny_spec
from torch import nn
from torch.nn import functional as F

from vg_core.data import load
from vg_core.models import build_model
from vg_core.models.mlp import MLP
from vg_core.probes import (
    ACTIVATION_BINS,
    LAYER_QUANTITIES,
    LOG_GRAD_BINS,
    PERCENTILES,
    PRE_ACTIVATION_BINS,
    SIGNED_GRAD_BINS,
    SLOPE_FRACTION,
    Bins,
    histogram,
    log_abs_histogram,
    percentiles,
    probe_batch,
)
from vg_core.probes.quantities import select_on_cpu, select_on_device
from vg_core.spec import ACTIVATIONS

FUNCTIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "swish": F.silu,
    "linear": lambda u: u,
}


@pytest.fixture(scope="module")
def probe_data():
    """500 real test digits (the probe batch runs use), as the training loop would pass them."""
    ds = load("mnist-sample", 0, seed=0, probe_size=500, device="cpu")
    return ds.x_probe, ds.y_probe


def oracle(model: MLP, x: torch.Tensor, y: torch.Tensor, activation: str) -> dict:
    """The probe's quantities computed directly: our own forward (functional, no hooks, no Recording),
    torch.autograd.grad for dL/dW and dL/dz, and numpy (float64) for every summary and histogram."""
    act = FUNCTIONS[activation]
    h, zs, pres, posts = x, [], [], []
    for index, linear in enumerate(model.linears[:-1]):
        z = F.linear(h, linear.weight, linear.bias)
        if model.norms is not None and isinstance(model.norms[0], nn.BatchNorm1d):
            norm = model.norms[index]  # batch statistics, running stats untouched (None)
            u = F.batch_norm(z, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)
        elif model.norms is not None:
            norm = model.norms[index]
            u = F.layer_norm(z, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        else:
            u = z
        a = act(u)
        zs.append(z)
        pres.append(u)
        posts.append(a)
        h = h + a if model.residual and index > 0 else a
    logits = F.linear(h, model.linears[-1].weight, model.linears[-1].bias)
    zs.append(logits)
    loss = F.cross_entropy(logits, y)
    weights = [linear.weight for linear in model.linears]
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, weights + zs + params)
    n = len(weights)
    return {
        "loss": loss.item(),
        "weight_grads": [g.double().numpy() for g in grads[:n]],
        "z_grads": [g.double().numpy() for g in grads[n : 2 * n]],
        "param_grads": [g.double().numpy() for g in grads[2 * n :]],
        "weights": [w.detach().double().numpy() for w in weights],
        "pres": [u.detach().double().numpy() for u in pres],
        "posts": [a.detach().double().numpy() for a in posts],
    }


def np_summary(values: np.ndarray) -> tuple[float, float, float]:
    flat = values.reshape(-1)
    return float(np.linalg.norm(flat)), float(np.abs(flat).mean()), float(flat.std(ddof=1))


def np_log_hist(values: np.ndarray, bins: Bins = LOG_GRAD_BINS) -> np.ndarray:
    flat = values.reshape(-1)
    keep = np.isfinite(flat) & (flat != 0)
    logs = np.clip(np.log10(np.abs(flat[keep])), bins.low, bins.high)
    return np.histogram(logs, bins=bins.edges)[0]


def np_hist(values: np.ndarray, bins: Bins) -> np.ndarray:
    return np.histogram(np.clip(values.reshape(-1), bins.low, bins.high), bins=bins.edges)[0]


def assert_counts_close(ours: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Bin counts equal, but for a value that float32 and float64 put on different sides of an edge."""
    assert ours.sum() == expected.sum(), what
    assert np.abs(ours - expected).sum() <= max(2, 1e-4 * expected.sum()), what


CONFIGS = [
    pytest.param({"activation": "sigmoid"}, id="article-like-sigmoid"),
    pytest.param({"activation": "relu", "init": "kaiming_normal", "norm": "batch"}, id="relu-kaiming-batchnorm"),
    pytest.param({"activation": "tanh", "init": "xavier_normal", "norm": "layer", "residual": True}, id="tanh-ln-res"),
    pytest.param({"activation": "swish", "init": "lecun_normal", "depth": 5}, id="swish-lecun"),
    pytest.param({"activation": "linear", "init": "normal", "init_std": 0.05}, id="linear-normal"),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_probe_matches_autograd(config, probe_data):
    x, y = probe_data
    spec = tiny_spec(**config)
    model = build_model(spec)
    expected = oracle(copy.deepcopy(model), x, y, spec.activation)
    snap = probe_batch(model, x, y, spec.activation)
    stats = snap.stats
    n_linear = spec.depth + 1
    assert set(stats) == set(LAYER_QUANTITIES)
    assert all(len(v) == n_linear for v in stats.values())
    assert snap.loss == pytest.approx(expected["loss"], rel=1e-6)
    close = {"rtol": 1e-5, "atol": 1e-12}

    for layer in range(n_linear):
        for prefix, grads in (("weight_grad", expected["weight_grads"]), ("grad_out", expected["z_grads"])):
            g = grads[layer]
            norm, mean_abs, std = np_summary(g)
            ours = [stats[f"{prefix}_{s}"][layer] for s in ("norm", "mean_abs", "std")]
            np.testing.assert_allclose(ours, [norm, mean_abs, std], **close, err_msg=f"{prefix} fc{layer + 1}")
            specials = [np.sum(g == 0), np.sum(np.isnan(g)), np.sum(np.isinf(g))]
            assert [stats[f"{prefix}_{s}"][layer] for s in ("zeros", "nan", "inf")] == specials
            counts = snap.histograms[prefix][layer]
            # every element is in a bin or counted as zero / NaN / inf: nothing dropped
            assert counts.sum() + sum(specials) == g.size
            assert_counts_close(counts, np_log_hist(g), f"{prefix} histogram fc{layer + 1}")
        w = expected["weights"][layer]
        np.testing.assert_allclose(stats["weight_std"][layer], w.std(ddof=1), **close)
        np.testing.assert_allclose(
            stats["grad_weight_ratio"][layer], expected["weight_grads"][layer].std(ddof=1) / w.std(ddof=1), **close
        )

    act_bins = ACTIVATION_BINS[spec.activation]
    assert snap.histograms["activation"].shape == (spec.depth, act_bins.count)
    assert snap.histograms["pre_activation"].shape == (spec.depth, PRE_ACTIVATION_BINS.count)
    for layer in range(spec.depth):
        pre, post = expected["pres"][layer], expected["posts"][layer]
        np.testing.assert_allclose(stats["act_mean"][layer], post.mean(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(stats["act_std"][layer], post.std(ddof=1), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(stats["pre_act_mean"][layer], pre.mean(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(stats["pre_act_std"][layer], pre.std(ddof=1), rtol=1e-4, atol=1e-6)
        ours = [stats[f"pre_act_p{q}"][layer] for q in PERCENTILES]
        np.testing.assert_allclose(ours, np.percentile(pre, PERCENTILES), rtol=1e-5, atol=1e-6)
        assert snap.histograms["activation"][layer].sum() == post.size
        assert snap.histograms["pre_activation"][layer].sum() == pre.size
        assert_counts_close(snap.histograms["activation"][layer], np_hist(post, act_bins), "activation")
        assert_counts_close(snap.histograms["pre_activation"][layer], np_hist(pre, PRE_ACTIVATION_BINS), "pre")
        saturated, dead = hand_saturation(spec.activation, post, pre)
        np.testing.assert_allclose(stats["saturated_frac"][layer], saturated, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(stats["dead_frac"][layer], dead, rtol=1e-6, atol=1e-7)
    # the output layer has no activation
    for quantity in (
        "act_mean",
        "act_std",
        "pre_act_mean",
        "pre_act_std",
        "pre_act_p50",
        "saturated_frac",
        "dead_frac",
    ):
        assert np.isnan(stats[quantity][spec.depth])

    # the article's pooled histogram of all parameter gradients, range -1..1, and what falls outside
    pooled = np.concatenate([g.reshape(-1) for g in expected["param_grads"]])
    assert snap.signed_histogram.shape == (SIGNED_GRAD_BINS.count,)
    inside = pooled[np.abs(pooled) <= 1]
    expected_signed = np.histogram(inside, bins=SIGNED_GRAD_BINS.edges)[0]
    # The two bins either side of zero are compared in test_signed_histogram_puts_tiny_negative_gradients_left_of_zero
    around_zero = [SIGNED_GRAD_BINS.count // 2 - 1, SIGNED_GRAD_BINS.count // 2]
    away = np.ones(SIGNED_GRAD_BINS.count, dtype=bool)
    away[around_zero] = False
    assert_counts_close(snap.signed_histogram[away], expected_signed[away], "signed")
    assert snap.signed_histogram[around_zero].sum() == expected_signed[around_zero].sum()
    assert snap.signed_outside == np.sum(np.abs(pooled) > 1)
    assert snap.signed_histogram.sum() + snap.signed_outside == pooled.size == spec.n_parameters


@pytest.mark.parametrize("size", [1, 2, 7, 100, 25_600])
def test_percentiles_are_numpys_exactly(size):
    values = torch.randn(size, generator=torch.Generator().manual_seed(size)) * 3 + 1
    qs = (0, 15, 50, 85, 100)
    np.testing.assert_allclose(percentiles(values, qs).numpy(), np.percentile(values.double().numpy(), qs), rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_both_ways_of_selecting_pick_the_sorted_elements(dtype):
    values = (torch.randn(5_000, generator=torch.Generator().manual_seed(1)) * 4).round().to(dtype)  # many ties
    ranks = [0, 749, 750, 2_499, 2_500, 4_249, 4_999]
    expected = values.float().sort().values[ranks]
    assert torch.equal(select_on_cpu(values, ranks).float(), expected)
    assert torch.equal(select_on_device(values, ranks).float(), expected)


@pytest.mark.parametrize("seed", range(6))
def test_selecting_any_ranks_picks_the_sorted_elements(seed):
    """Random sizes and rank sets (adjacent, at either end, one or many) against a full sort."""
    generator = torch.Generator().manual_seed(seed)
    size = int(torch.randint(1, 3_000, (1,), generator=generator))
    values = (torch.randn(size, generator=generator) * 3).round()  # ties
    count = int(torch.randint(1, min(size, 12) + 1, (1,), generator=generator))
    ranks = sorted(set(torch.randint(0, size, (count,), generator=generator).tolist()) | {0, size - 1})
    assert torch.equal(select_on_cpu(values, ranks), values.sort().values[ranks])


def test_percentiles_of_values_with_nan_are_nan_as_numpys():
    values = torch.tensor([[1.0, float("nan")], [3.0, 4.0]])
    assert np.isnan(np.percentile(values.numpy(), PERCENTILES)).all()
    assert torch.isnan(percentiles(values, PERCENTILES)).all()


def autograd_slope(activation: str, pre: np.ndarray) -> np.ndarray:
    """f'(pre) by torch.autograd on the functional form (not the model's module), in float64."""
    x = torch.tensor(pre, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(FUNCTIONS[activation](x).sum(), x)
    return grad.numpy()


def hand_saturation(activation: str, post: np.ndarray, pre: np.ndarray) -> tuple[float, float]:
    """(share of elements, share of units on every sample) whose slope is below SLOPE_FRACTION of the largest."""
    if activation == "linear":
        return np.nan, np.nan
    largest = np.abs(autograd_slope(activation, np.linspace(-20, 20, 400_001))).max()
    stuck = np.abs(autograd_slope(activation, pre)) < SLOPE_FRACTION * largest
    return stuck.mean(), stuck.all(axis=0).mean()


def test_weight_gradient_norms_match_hooks_on_the_article_network(probe_data):
    """The article's 5x1000 sigmoid net: our norms equal those a plain backward with tensor hooks sees."""
    from vg_core.spec import ARTICLE_SPEC

    x, y = probe_data
    model = build_model(ARTICLE_SPEC)
    seen = {}
    twin = copy.deepcopy(model)
    for index, linear in enumerate(twin.linears):
        linear.weight.register_hook(lambda g, i=index: seen.__setitem__(i, g.norm().item()))
    F.cross_entropy(twin(x), y).backward()
    snap = probe_batch(model, x, y, "sigmoid")
    np.testing.assert_allclose(snap.stats["weight_grad_norm"], [seen[i] for i in range(6)], rtol=1e-5)
    # and the article's point: fc1 gets a small fraction of what fc5 gets
    assert snap.stats["weight_grad_norm"][0] < 0.01 * snap.stats["weight_grad_norm"][4]


# ---------------------------------------------------------------- histogram bookkeeping


def test_log_abs_histogram_counts_every_kind_of_value():
    values = torch.tensor(
        [0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-40, 1e-31, 1e5, -2.0, 0.5], dtype=torch.float32
    )
    assert values[5] != 0  # 1e-40 is a float32 denormal, not zero
    counts, specials = log_abs_histogram(values)
    assert specials.tolist() == [2, 1, 2]  # zeros (both signs), NaN, +-inf
    assert counts.sum() + specials.sum() == values.numel()
    bins = LOG_GRAD_BINS
    width = (bins.high - bins.low) / bins.count
    expected = np.zeros(bins.count)
    expected[0] += 2  # 1e-40 and 1e-31: below 1e-30, clamped into the first bin
    expected[-1] += 1  # 1e5: above 1e3, clamped into the last bin
    expected[int((np.log10(2.0) - bins.low) // width)] += 1
    expected[int((np.log10(0.5) - bins.low) // width)] += 1
    np.testing.assert_array_equal(counts.numpy(), expected)


def test_finite_values_whose_norm_overflows_have_no_inf():
    """Huge finite gradients: their L2 norm overflows float32, yet none of them is inf (counted, not assumed)."""
    values = torch.full((4,), 3e38)
    counts, specials = log_abs_histogram(values)
    assert torch.isinf(torch.linalg.vector_norm(values))
    assert specials.tolist() == [0, 0, 0] and counts[-1] == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_log_abs_histogram_totals_on_random_tensors(dtype):
    g = torch.Generator().manual_seed(0)
    scale = 10.0 ** torch.randint(-12, 4, (37, 53), generator=g).double()
    values = (torch.randn(37, 53, generator=g, dtype=torch.float64) * scale).to(dtype)
    values[0, :5] = 0
    values[1, :3] = float("nan")
    values[2, :4] = float("inf")
    counts, specials = log_abs_histogram(values)
    zeros = int((values.float() == 0).sum())  # float16 flushes the smallest values to zero
    assert zeros >= 5
    assert specials.tolist() == [zeros, 3, 4]
    assert counts.sum() + specials.sum() == values.numel()
    assert_counts_close(counts.numpy().astype(int), np_log_hist(values.float().double().numpy()), "random")


def test_histogram_clamps_into_the_end_bins():
    counts = histogram(torch.tensor([-5.0, 0.0, 0.1, 0.3, 0.6, 0.9, 1.0, 7.0, float("inf")]), Bins(0.0, 1.0, 4))
    assert counts.tolist() == [3, 1, 1, 4]


def test_bins_edges():
    edges = Bins(-1.0, 1.0, 4).edges
    np.testing.assert_allclose(edges, [-1, -0.5, 0, 0.5, 1])
    assert len(LOG_GRAD_BINS.edges) == LOG_GRAD_BINS.count + 1
    assert LOG_GRAD_BINS.low <= -30 and LOG_GRAD_BINS.high >= 3
    assert set(ACTIVATION_BINS) == set(ACTIVATIONS)


# ---------------------------------------------------------------- saturation and dead units, by hand


def _one_layer(activation: str, biases: list[float], width: int = 8) -> MLP:
    model = build_model(tiny_spec(activation=activation, depth=1, width=width))
    with torch.no_grad():
        model.linears[0].weight.zero_()
        model.linears[0].bias.copy_(torch.tensor(biases))
    return model


def test_saturated_fraction_of_sigmoid_by_hand():
    # sigmoid'(±10) = 4.5e-5 is below a quarter of sigmoid's largest slope 0.25; sigmoid'(±2.5) = 0.070 is not
    model = _one_layer("sigmoid", [10, 10, -10, -10, 0, 2.5, -2.5, 1])
    x, y = torch.randn(20, 784), torch.arange(20) % 10
    snap = probe_batch(model, x, y, "sigmoid")
    assert snap.stats["saturated_frac"][0] == pytest.approx(0.5)
    assert snap.stats["saturated_or_dead"][0] == pytest.approx(0.5)
    assert snap.stats["dead_frac"][0] == pytest.approx(0.5)  # the same four units, on every sample


def test_a_sigmoid_piled_at_six_percent_counts_as_saturated():
    # Glorot & Bengio's figure 2: a top layer sitting at 0.06 has slope 0.056, 23 % of 0.25
    model = _one_layer("sigmoid", [float(np.log(0.06 / 0.94))] * 8)
    snap = probe_batch(model, torch.randn(20, 784), torch.arange(20) % 10, "sigmoid")
    assert snap.stats["act_mean"][0] == pytest.approx(0.06, rel=1e-5)
    assert snap.stats["saturated_or_dead"][0] == 1.0


def test_saturated_fraction_of_tanh_by_hand():
    # tanh'(3) = 0.0099 < 0.25; tanh'(1.2) = 0.305 is not
    model = _one_layer("tanh", [3, -3, 1.2, -1.2, 0, 0, 0, 0])
    snap = probe_batch(model, torch.randn(20, 784), torch.arange(20) % 10, "tanh")
    assert snap.stats["saturated_frac"][0] == pytest.approx(0.25)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "swish"])
def test_dead_fraction_by_hand(activation):
    # units 0-2 and 6 get -5 for every sample: slope near 0, dead; unit 7 is at +95 for one sample only
    model = _one_layer(activation, [-5, -5, -5, 1, 1, 1, -5, -5])
    with torch.no_grad():
        model.linears[0].weight[7, 0] = 100.0
    x = torch.zeros(20, 784)
    x[0, 0] = 1.0
    snap = probe_batch(model, x, torch.arange(20) % 10, activation)
    assert snap.stats["dead_frac"][0] == pytest.approx(4 / 8)
    assert snap.stats["saturated_or_dead"][0] == pytest.approx(4 / 8)
    assert snap.stats["saturated_frac"][0] == pytest.approx((4 * 20 + 19) / (8 * 20))  # per element


def test_a_relu_unit_at_exactly_zero_is_dead():
    model = _one_layer("relu", [0, 0, 1, 1, 1, 1, 1, 1])
    snap = probe_batch(model, torch.zeros(20, 784), torch.arange(20) % 10, "relu")
    assert snap.stats["dead_frac"][0] == pytest.approx(2 / 8)


def test_linear_activation_has_neither_saturation_nor_dead_units():
    model = _one_layer("linear", [-5, -5, 0, 0, 1, 1, 5, 5])
    snap = probe_batch(model, torch.randn(20, 784), torch.arange(20) % 10, "linear")
    for quantity in ("saturated_frac", "dead_frac", "saturated_or_dead"):
        assert np.isnan(snap.stats[quantity][0])


# ---------------------------------------------------------------- probing changes nothing


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_probing_changes_no_weights_optimizer_state_or_running_stats(optimizer, probe_data):
    x, y = probe_data
    spec = tiny_spec(norm="batch", optimizer=optimizer, activation="relu")
    model = build_model(spec)
    opt = (
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        if optimizer == "sgd"
        else torch.optim.Adam(model.parameters(), lr=1e-3)
    )
    for _ in range(2):  # some optimizer state and non-trivial running statistics
        opt.zero_grad()
        F.cross_entropy(model(x[:100]), y[:100]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    model.train()
    params_before = copy.deepcopy(model.state_dict())
    opt_before = copy.deepcopy(opt.state_dict())
    snap = probe_batch(model, x, y, spec.activation)
    assert np.isfinite(snap.stats["weight_grad_norm"]).all()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, params_before[name]), name  # weights, running mean/var, batch counter
    opt_after = opt.state_dict()
    assert opt_after["param_groups"] == opt_before["param_groups"]
    for index, state in opt_before["state"].items():
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(opt_after["state"][index][key]), torch.as_tensor(value)), key
    assert all(p.grad is None for p in model.parameters())  # no gradient left for a later step to use
    assert model.training
    # the next real step is the same as without the probe
    twin = build_model(spec)
    twin.load_state_dict(params_before)
    torch.testing.assert_close(model(x[:50]), twin(x[:50]))


def test_probe_twice_gives_identical_results(probe_data):
    x, y = probe_data
    model = build_model(tiny_spec(norm="batch"))
    a, b = probe_batch(model, x, y, "sigmoid"), probe_batch(model, x, y, "sigmoid")
    for name in a.stats:
        np.testing.assert_array_equal(a.stats[name], b.stats[name])
    for name in a.histograms:
        np.testing.assert_array_equal(a.histograms[name], b.histograms[name])


# ---------------------------------------------------------------- non-finite networks


def _nan_model(spec) -> MLP:
    model = build_model(spec)
    with torch.no_grad():
        model.linears[1].weight[0, 0] = float("nan")
    return model


def test_nan_gradients_are_counted_not_dropped(probe_data):
    x, y = probe_data
    spec = tiny_spec(activation="relu")
    model = _nan_model(spec)
    snap = probe_batch(model, x, y, spec.activation)
    assert np.isnan(snap.loss)
    for layer, linear in enumerate(model.linears):
        for prefix, numel in (("weight_grad", linear.weight.numel()), ("grad_out", len(x) * linear.out_features)):
            nan = snap.stats[f"{prefix}_nan"][layer]
            total = snap.histograms[prefix][layer].sum() + nan
            total += snap.stats[f"{prefix}_zeros"][layer] + snap.stats[f"{prefix}_inf"][layer]
            assert total == numel, (prefix, layer)
            assert nan > 0, (prefix, layer)


def test_activation_histograms_account_for_nan_values(probe_data):
    """Every histogram must add up to its element count, NaN included (the issue's requirement).

    Fails today: `histogram` drops NaN (torch.histc ignores it) and no act/pre-act NaN count is
    recorded, so at a divergence the activation histograms are silently empty. See the report
    for the proposed `act_nan` / `pre_act_nan` quantities."""
    x, y = probe_data
    spec = tiny_spec(activation="tanh")
    snap = probe_batch(_nan_model(spec), x, y, spec.activation)
    for layer in range(spec.depth):
        for quantity, nan_stat in (("activation", "act_nan"), ("pre_activation", "pre_act_nan")):
            counts = snap.histograms[quantity][layer].sum()
            assert nan_stat in snap.stats, f"no {nan_stat} count: NaN {quantity}s vanish from the histogram"
            assert counts + snap.stats[nan_stat][layer] == len(x) * spec.width, (quantity, layer)


def test_pooled_signed_histogram_accounts_for_nan_gradients(probe_data):
    """The pooled signed histogram plus `signed_outside` must cover every parameter gradient.

    Fails today: `signed_outside` counts |g| > 1, which is False for NaN, so NaN gradients are in
    neither. Proposed fix: count `~(pooled.abs() <= 1)` as outside."""
    x, y = probe_data
    spec = tiny_spec(activation="relu")
    snap = probe_batch(_nan_model(spec), x, y, spec.activation)
    assert snap.signed_histogram.sum() + snap.signed_outside == spec.n_parameters


def test_signed_histogram_puts_tiny_negative_gradients_left_of_zero(probe_data):
    """The article's histogram (bins of 0.02 on -1..1): a gradient of -1e-9 belongs in [-0.02, 0), not [0, 0.02).

    Fails today: torch.histc computes (g - low) * bins / (high - low) in float32, and -1e-9 + 1
    rounds to exactly 1.0, so every negative gradient smaller than ~3e-8 in magnitude is counted as
    positive. Vanishing gradients are exactly those, so the article's view is lopsided."""
    x, y = probe_data
    spec = tiny_spec(activation="sigmoid", depth=5)  # vanishing: fc1's gradients are tiny
    model = build_model(spec)
    expected = oracle(copy.deepcopy(model), x, y, spec.activation)
    pooled = np.concatenate([g.reshape(-1) for g in expected["param_grads"]])
    snap = probe_batch(model, x, y, spec.activation)
    middle = SIGNED_GRAD_BINS.count // 2
    assert snap.signed_histogram[middle - 1] == np.sum((pooled >= -0.02) & (pooled < 0))
    assert snap.signed_histogram[middle] == np.sum((pooled >= 0) & (pooled < 0.02))
    assert np.sum((pooled < 0) & (pooled > -3e-8)) > 0  # the case in point is there
