"""The MLP: the article's shape and size, every activation and init, residuals, norms, seeding."""

from __future__ import annotations

import itertools
import math
import threading

import pytest
import torch
from engine_helpers import tiny_spec
from torch import nn

from vg_core.models import ACTIVATION_MODULES, build_model, init_weight
from vg_core.models.mlp import MLP
from vg_core.probes.hooks import attach
from vg_core.probes.snapshot import probe_batch
from vg_core.spec import ACTIVATIONS, ARTICLE_SPEC, INITS, NORMS, RunSpec


def test_article_network_shape_and_parameter_count():
    model = build_model(ARTICLE_SPEC)
    assert sum(p.numel() for p in model.parameters()) == 4_799_010 == ARTICLE_SPEC.n_parameters
    assert model.layer_names == ["fc1", "fc2", "fc3", "fc4", "fc5", "fc6"]
    shapes = [tuple(linear.weight.shape) for linear in model.linears]
    assert shapes == [(1000, 784)] + [(1000, 1000)] * 4 + [(10, 1000)]
    assert all(isinstance(model.get_submodule(f"fc{i}").act, nn.Sigmoid) for i in range(1, 6))
    assert model.norms is None and not model.residual
    # every hidden layer owns its activation module, so that a hook can tell layers apart
    assert len({id(model.get_submodule(f"fc{i}").act) for i in range(1, 6)}) == 5


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(("depth", "width"), [(1, 3), (4, 17), (2, 64)])
def test_parameter_count_matches_the_spec(norm, depth, width):
    spec = RunSpec(depth=depth, width=width, norm=norm)
    model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == spec.n_parameters


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("init", INITS)
def test_every_activation_and_init_builds_and_runs(activation, init):
    spec = RunSpec(activation=activation, init=init, init_std=0.05, depth=3, width=16)
    model = build_model(spec)
    x = torch.randn(8, 784, generator=torch.Generator().manual_seed(0))
    logits = model(x)
    assert logits.shape == (8, 10) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_activation_modules_are_the_named_functions():
    x = torch.linspace(-3, 3, 13)
    expected = {
        "sigmoid": torch.sigmoid(x),
        "tanh": torch.tanh(x),
        "relu": x.clamp(min=0),
        "leaky_relu": torch.where(x > 0, x, 0.01 * x),
        "elu": torch.where(x > 0, x, torch.exp(x) - 1),
        "gelu": 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
        "swish": x * torch.sigmoid(x),
        "linear": x,
    }
    assert set(ACTIVATION_MODULES) == set(ACTIVATIONS)
    for name, module in ACTIVATION_MODULES.items():
        torch.testing.assert_close(module()(x), expected[name], msg=name)


@pytest.mark.parametrize("init", [i for i in INITS if i != "default"])
def test_named_inits_zero_the_biases(init):
    model = build_model(RunSpec(init=init, depth=2, width=32))
    for linear in model.linears:
        assert torch.count_nonzero(linear.bias) == 0


def test_default_init_is_uniform_within_one_over_sqrt_fan_in():
    model = build_model(RunSpec(depth=2, width=256))
    for linear in model.linears:
        bound = 1 / math.sqrt(linear.in_features)
        assert linear.weight.abs().max() <= bound and linear.bias.abs().max() <= bound
        assert linear.weight.abs().max() > 0.99 * bound  # it fills the interval: not a narrower init
        assert torch.count_nonzero(linear.bias) == linear.out_features  # PyTorch's default keeps biases
        # uniform on [-b, b]: std b / sqrt(3)
        assert linear.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


@pytest.mark.parametrize(
    ("init", "expected_std"),
    [
        ("kaiming_normal", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
        ("kaiming_uniform", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
        ("lecun_normal", lambda fan_in, fan_out: math.sqrt(1 / fan_in)),
        ("xavier_normal", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
        ("xavier_uniform", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
        ("normal", lambda fan_in, fan_out: 0.37),
    ],
)
def test_init_standard_deviations(init, expected_std):
    model = build_model(RunSpec(init=init, init_std=0.37, depth=2, width=300))
    for linear in model.linears[:2]:  # 235,200 and 90,000 weights: std within a few percent
        fan_out, fan_in = linear.weight.shape
        weight = linear.weight.detach()
        assert weight.std().item() == pytest.approx(expected_std(fan_in, fan_out), rel=0.03), linear
        assert abs(weight.mean().item()) < 0.05 * expected_std(fan_in, fan_out)
    if init.endswith("uniform"):
        fan_out, fan_in = model.linears[0].weight.shape
        bound = expected_std(fan_in, fan_out) * math.sqrt(3)
        assert model.linears[0].weight.abs().max() <= bound * (1 + 1e-6)


def test_orthogonal_init_has_orthonormal_rows():
    model = build_model(RunSpec(init="orthogonal", depth=2, width=64))
    for linear in model.linears:
        w = linear.weight.detach().double()
        rows, cols = w.shape
        gram = w @ w.T if rows <= cols else w.T @ w
        torch.testing.assert_close(gram, torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-5, rtol=0)


def test_unknown_init_is_an_error():
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        init_weight(nn.Linear(3, 2), "zeros")


def test_same_seed_same_weights_other_seed_other_weights():
    for init in ("default", "kaiming_normal", "orthogonal"):
        a, b = build_model(tiny_spec(init=init)), build_model(tiny_spec(init=init))
        c = build_model(tiny_spec(init=init, seed=1))
        for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
            assert torch.equal(pa, pb)
        assert not torch.equal(a.linears[0].weight, c.linears[0].weight)


def test_build_model_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(tiny_spec(seed=9))
    assert torch.equal(torch.rand(3), expected)
    # and does not depend on it
    torch.manual_seed(1)
    a = build_model(tiny_spec())
    torch.manual_seed(2)
    b = build_model(tiny_spec())
    assert torch.equal(a.linears[1].weight, b.linears[1].weight)


def test_models_built_in_threads_at_once_have_their_own_seeds_weights():
    """Two visitors' runs (VG_MAX_TRAININGS > 1) or a comparison trained side by side build their models at once,
    while other runs probe theirs (a probe saves the global generator's state and restores it). Without
    vg_core.rng's lock a build drew from another thread's seed, or from a state a probe had just restored."""
    specs = [tiny_spec(seed=seed, depth=4, width=64) for seed in range(3)]
    specs += [RunSpec(model="lstm", width=32, seed=seed) for seed in range(3)]
    expected = [list(build_model(spec).state_dict().values()) for spec in specs]
    x, y = torch.randn(32, 784), torch.randint(0, 10, (32,))
    built: list[list[torch.Tensor]] = [[] for _ in specs]

    def build(index: int) -> None:
        start.wait()
        built[index] = list(build_model(specs[index]).state_dict().values())

    def probe(model: nn.Module) -> None:
        start.wait()
        for _ in range(5):
            probe_batch(model, x, y, "sigmoid")

    for _ in range(10):
        start = threading.Barrier(len(specs) + 2)
        threads = [threading.Thread(target=build, args=(index,)) for index in range(len(specs))]
        threads += [threading.Thread(target=probe, args=(build_model(tiny_spec(seed=9)),)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for want, got in zip(expected, built):
            assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))


def _manual_forward(model: MLP, x: torch.Tensor, activation, residual: bool, norms=None) -> torch.Tensor:
    h = x
    for index, linear in enumerate(model.linears[:-1]):
        z = h @ linear.weight.T + linear.bias
        if norms is not None:
            z = norms(index, z)
        a = activation(z)
        h = h + a if residual and index > 0 else a
    last = model.linears[-1]
    return h @ last.weight.T + last.bias


@pytest.mark.parametrize("residual", [False, True])
def test_forward_matches_a_hand_written_forward(residual):
    spec = tiny_spec(activation="tanh", depth=4, residual=residual)
    model = build_model(spec)
    x = torch.randn(5, 784, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(x), _manual_forward(model, x, torch.tanh, residual))


def test_residual_changes_the_output_but_not_the_weights():
    plain, skip = build_model(tiny_spec(depth=4)), build_model(tiny_spec(depth=4, residual=True))
    for a, b in zip(plain.parameters(), skip.parameters()):
        assert torch.equal(a, b)
    x = torch.randn(5, 784, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(plain(x), skip(x))


def test_residual_keeps_gradients_alive_in_a_deep_sigmoid_net():
    x = torch.randn(64, 784, generator=torch.Generator().manual_seed(0))
    y = torch.arange(64) % 10
    ratios = {}
    for residual in (False, True):
        model = build_model(RunSpec(depth=12, width=64, residual=residual))
        nn.functional.cross_entropy(model(x), y).backward()
        ratios[residual] = (model.linears[0].weight.grad.norm() / model.linears[-2].weight.grad.norm()).item()
    assert ratios[False] < 1e-3 < 1e-1 < ratios[True]


def test_batch_norm_standardises_each_unit_over_the_batch():
    model = build_model(tiny_spec(norm="batch", depth=3))
    assert all(isinstance(norm, nn.BatchNorm1d) for norm in model.norms)
    x = torch.randn(200, 784, generator=torch.Generator().manual_seed(3)) * 5 + 2
    model.train()
    with attach(model.layers()) as captures:
        model(x)
    for pre in [c.pre_activations[0] for c in captures[:-1]]:
        torch.testing.assert_close(pre.mean(0), torch.zeros(pre.shape[1]), atol=1e-4, rtol=0)
        torch.testing.assert_close(pre.var(0, unbiased=False), torch.ones(pre.shape[1]), atol=5e-3, rtol=0)
    # equals the hand-written forward with a per-unit standardisation
    expected = _manual_forward(
        model,
        x,
        torch.sigmoid,
        False,
        lambda i, z: (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + model.norms[i].eps),
    )
    torch.testing.assert_close(model(x), expected, atol=1e-4, rtol=1e-4)
    # training mode updated the running statistics
    assert model.norms[0].num_batches_tracked.item() == 2
    assert not torch.equal(model.norms[0].running_mean, torch.zeros(spec_width(model)))


def spec_width(model: MLP) -> int:
    return model.linears[0].out_features


def test_layer_norm_standardises_each_sample():
    model = build_model(tiny_spec(norm="layer", depth=3, activation="relu"))
    assert all(isinstance(norm, nn.LayerNorm) for norm in model.norms)
    x = torch.randn(10, 784, generator=torch.Generator().manual_seed(3))
    with attach(model.layers()) as captures:
        model(x)
    for pre in [c.pre_activations[0] for c in captures[:-1]]:
        torch.testing.assert_close(pre.mean(1), torch.zeros(10), atol=1e-5, rtol=0)
        torch.testing.assert_close(pre.var(1, unbiased=False), torch.ones(10), atol=1e-3, rtol=0)
    expected = _manual_forward(
        model,
        x,
        torch.relu,
        False,
        lambda i, z: (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + 1e-5),
    )
    torch.testing.assert_close(model(x), expected, atol=1e-4, rtol=1e-4)


def test_hooks_see_every_layer():
    spec = tiny_spec(depth=3, width=8, norm="layer")
    model = build_model(spec)
    with attach(model.layers()) as captures:
        logits = model(torch.zeros(4, 784))
        logits.sum().backward()
    assert [len(c.outputs) for c in captures] == [1, 1, 1, 1] and torch.equal(captures[-1].outputs[0], logits)
    assert [len(c.activations) for c in captures] == [1, 1, 1, 0]
    assert all(c.activations[0].shape == (4, 8) for c in captures[:-1])
    assert all(len(c.output_grads) == 1 for c in captures)


def test_mlp_weights_are_those_of_the_article_construction():
    """The same seed gives the weights nn.Linear(784, w), nn.Linear(w, w), ... created in order (as before)."""
    spec = tiny_spec(depth=3, width=16, norm="batch", residual=True)
    model = build_model(spec)
    torch.manual_seed(spec.seed)
    sizes = [784, 16, 16, 16, 10]
    expected = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
    for linear, twin in zip(model.linears, expected):
        assert torch.equal(linear.weight, twin.weight) and torch.equal(linear.bias, twin.bias)


def test_model_moves_to_the_requested_device():
    model = build_model(tiny_spec(), device="cpu")
    assert all(p.device.type == "cpu" for p in model.parameters())
