"""Gradients through time against PyTorch: the fused modules, its own cells and finite differences; the physics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vg_core.data import load
from vg_core.models.rnn import KINDS, RecurrentConfig, RecurrentNet, build_recurrent_model
from vg_core.probes import ACTIVATION_BINS, LOG_GRAD_BINS, log_abs_histogram
from vg_core.probes.through_time import (
    HISTOGRAM_COLUMNS,
    STAT_COLUMNS,
    histogram_steps,
    probe_through_time,
    time_histograms,
    time_stats,
    unrolled_forward,
)

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
CONFIGS = [
    RecurrentConfig(kind="rnn", width=10, recurrent_init="orthogonal", recurrent_gain=1.2),
    RecurrentConfig(kind="rnn", width=10, activation="relu", recurrent_init="identity"),
    RecurrentConfig(kind="lstm", width=10, forget_bias=1.0),
    RecurrentConfig(kind="gru", width=10),
]
CASES = [dataclasses.replace(config, depth=depth) for config in CONFIGS for depth in (1, 2)]


@pytest.fixture(scope="module")
def digits():
    """256 real test digits, the probe batch a run uses."""
    ds = load("mnist-sample", 0, seed=0, probe_size=256, device="cpu")
    return ds.x_probe, ds.y_probe


def model64(config: RecurrentConfig) -> RecurrentNet:
    """The model in float64, so that two correct computations agree to ~1e-12."""
    return build_recurrent_model(config).double()


def cell_oracle(model: RecurrentNet, x: torch.Tensor, y: torch.Tensor, offset: tuple[int, torch.Tensor] | None = None):
    """The loss and every h_t, by PyTorch's own cells (RNNCell, LSTMCell, GRUCell) carrying the fused modules'
    weights; `offset` = (t, delta) adds delta to the first layer's h_t (t from 1) for finite differences."""
    kind, inputs, hidden = model.config.kind, model.sequence(x), []
    for layer, (_, module) in enumerate(model.recurrent_layers):
        extra = {"nonlinearity": module.nonlinearity} if kind == "rnn" else {}
        cell = CELLS[kind](module.input_size, module.hidden_size, **extra).double()
        cell.load_state_dict({name.removesuffix("_l0"): value for name, value in module.state_dict().items()})
        h = c = inputs.new_zeros(len(x), module.hidden_size)
        hs = []
        for t in range(inputs.shape[1]):
            if kind == "lstm":
                h, c = cell(inputs[:, t], (h, c))
            else:
                h = cell(inputs[:, t], h)
            if offset is not None and layer == 0 and t + 1 == offset[0]:
                h = h + offset[1]
            hs.append(h)
        hidden.append(hs)
        inputs = torch.stack(hs, dim=1)
    return F.cross_entropy(model.fc(hidden[-1][-1]), y), hidden


@pytest.mark.parametrize("config", CASES, ids=lambda c: f"{c.kind}-{c.activation}-depth{c.depth}")
def test_the_unrolled_pass_is_the_fused_module(config, digits):
    """Same logits, loss and weight gradients as the fused nn.RNN/LSTM/GRU the training step uses."""
    model = model64(config)
    x, y = digits[0][:64].double(), digits[1][:64]
    fused_logits = model(x)
    fused = torch.autograd.grad(F.cross_entropy(fused_logits, y), list(model.parameters()))
    logits, hidden, cells = unrolled_forward(model, x)
    unrolled = torch.autograd.grad(F.cross_entropy(logits, y), list(model.parameters()))
    torch.testing.assert_close(logits, fused_logits, rtol=1e-10, atol=1e-12)
    for (name, _), ours, theirs in zip(model.named_parameters(), unrolled, fused):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12, msg=name)
    assert len(hidden) == config.depth and all(len(hs) == config.seq_len for hs in hidden)
    assert (cells is not None) == (config.kind == "lstm")
    # The last h_T of each layer is the fused module's output at T
    h, states = model.sequence(x), []
    for _, module in model.recurrent_layers:
        h, _ = module(h)
        states.append(h)
    for hs, fused_h in zip(hidden, states):
        torch.testing.assert_close(torch.stack(hs, dim=1), fused_h, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("config", CASES, ids=lambda c: f"{c.kind}-{c.activation}-depth{c.depth}")
def test_hidden_gradient_norms_are_the_total_gradients(config, digits):
    """‖∂L/∂h_t‖ for every t and layer equals autograd's through PyTorch's own cells: through time and
    through the layer above, not only the direct path."""
    model = model64(config)
    x, y = digits[0][:64].double(), digits[1][:64]
    probe = probe_through_time(model, x, y)
    loss, hidden = cell_oracle(model, x, y)
    grads = torch.autograd.grad(loss, [h for hs in hidden for h in hs])
    expected = torch.stack([g.norm() for g in grads]).reshape(config.depth, config.seq_len).numpy()
    assert probe.loss == pytest.approx(loss.item(), rel=1e-12)
    assert probe.layers == tuple(f"{config.kind}{i + 1}" for i in range(config.depth))
    np.testing.assert_allclose(probe.hidden_grad_norm, expected, rtol=1e-5)
    if config.depth == 2:  # the bottom layer's h_T reaches the loss only through the layer above
        assert probe.hidden_grad_norm[0, -1] > 0
    # Histograms: the oracle's gradient at each histogrammed t, by the project's log10 histogram
    for index, t in enumerate(probe.hist_t):
        counts, special = log_abs_histogram(grads[t - 1].float())
        np.testing.assert_array_equal(probe.hidden_grad_hist[0, index], counts.numpy())
        np.testing.assert_array_equal(probe.hidden_grad_special[0, index], special.numpy())


def test_cell_state_gradient_norms(digits):
    config = RecurrentConfig(kind="lstm", depth=2, width=8, forget_bias=2.0)
    model = model64(config)
    x, y = digits[0][:32].double(), digits[1][:32]
    probe = probe_through_time(model, x, y)
    logits, _, cells = unrolled_forward(model, x)
    grads = torch.autograd.grad(F.cross_entropy(logits, y), [c for cs in cells for c in cs])
    expected = torch.stack([g.norm() for g in grads]).reshape(2, config.seq_len).numpy()
    np.testing.assert_allclose(probe.cell_grad_norm, expected, rtol=1e-5)
    assert probe_through_time(model64(RecurrentConfig(kind="gru", width=8)), x, y).cell_grad_norm is None


def test_hidden_gradient_norm_by_finite_differences(digits):
    """d/dε L(h_1 + ε u) at ε = 0 along u = g/‖g‖ is ‖g‖: central differences through the cells."""
    model = model64(RecurrentConfig(width=6, seq_len=49, recurrent_init="orthogonal", recurrent_gain=1.1))
    x, y = digits[0][:16].double(), digits[1][:16]
    probe = probe_through_time(model, x, y)
    loss, hidden = cell_oracle(model, x, y)
    direction = torch.autograd.grad(loss, hidden[0][0])[0]
    direction = direction / direction.norm()
    eps = 1e-6
    with torch.no_grad():
        plus, _ = cell_oracle(model, x, y, offset=(1, eps * direction))
        minus, _ = cell_oracle(model, x, y, offset=(1, -eps * direction))
    assert (plus - minus).item() / (2 * eps) == pytest.approx(probe.hidden_grad_norm[0, 0], rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_histograms_add_up_to_their_element_counts(kind, digits):
    config = RecurrentConfig(kind=kind, depth=2, width=12, seq_len=98)
    x, y = digits
    probe = probe_through_time(build_recurrent_model(config), x, y)
    elements = len(x) * config.width
    assert list(probe.hist_t) == list(histogram_steps(98)) and len(probe.hist_t) == 16
    np.testing.assert_array_equal(probe.hidden_grad_hist.sum(-1) + probe.hidden_grad_special.sum(-1), elements)
    np.testing.assert_array_equal(probe.activation_hist.sum(-1) + probe.activation_nan, elements)
    assert probe.hidden_grad_hist.shape == (2, 16, LOG_GRAD_BINS.count)
    assert probe.activation_bins == ACTIVATION_BINS["tanh"]  # h_t of every LSTM/GRU/tanh RNN is in (-1, 1)


def test_activation_histograms_are_the_hidden_states(digits):
    model = build_recurrent_model(RecurrentConfig(width=12, activation="relu", recurrent_init="identity"))
    x, y = digits
    probe = probe_through_time(model, x, y)
    _, hidden, _ = unrolled_forward(model, x)
    bins = ACTIVATION_BINS["relu"]
    assert probe.activation_bins == bins
    for index, t in enumerate(probe.hist_t):
        values = hidden[0][t - 1].detach().double().clamp(bins.low, bins.high).numpy().ravel()
        np.testing.assert_array_equal(probe.activation_hist[0, index], np.histogram(values, bins.edges)[0])


@pytest.mark.parametrize(("seq_len", "count"), [(28, 16), (49, 16), (784, 16)])
def test_histogram_steps_span_the_sequence(seq_len, count):
    steps = histogram_steps(seq_len)
    assert len(steps) == count and steps[0] == 1 and steps[-1] == seq_len
    assert np.all(np.diff(steps) > 0)
    assert list(histogram_steps(5)) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("training", [True, False])
def test_the_model_is_unchanged_bit_for_bit(training, digits):
    model = build_recurrent_model(RecurrentConfig(kind="lstm", depth=2, width=8, forget_bias=1.0))
    x, y = digits
    F.cross_entropy(model(x[:20]), y[:20]).backward()  # gradients a training step left behind
    model.train(training)
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    probe_through_time(model, x, y)
    assert model.training is training and all(m.training is training for m in model.modules())
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, weights[name]) and torch.equal(parameter.grad, grads[name]), name


def test_tidy_frames(digits):
    config = RecurrentConfig(kind="lstm", depth=2, width=8, seq_len=49)
    probe = probe_through_time(build_recurrent_model(config), *digits)
    stats = pd.DataFrame(time_stats(7, probe))  # columns, made a frame here as the recorder does
    assert list(stats.columns) == STAT_COLUMNS
    assert set(stats["step"]) == {7} and set(stats["layer"]) == {1, 2} and probe.layers == ("lstm1", "lstm2")
    norms = stats[stats["quantity"] == "hidden_grad_norm"]
    assert len(norms) == 2 * 49 and sorted(set(norms["t"])) == list(range(1, 50))
    top = norms[norms["layer"] == 2].sort_values("t")["value"].to_numpy()
    np.testing.assert_array_equal(top, probe.hidden_grad_norm[1])
    cell = stats[(stats["quantity"] == "cell_grad_norm") & (stats["layer"] == 1)].sort_values("t")
    np.testing.assert_array_equal(cell["value"].to_numpy(), probe.cell_grad_norm[0])
    zeros = stats[stats["quantity"] == "hidden_grad_zeros"]
    assert sorted(set(zeros["t"])) == list(probe.hist_t) and len(zeros) == 2 * len(probe.hist_t)
    hists = pd.DataFrame(time_histograms(7, probe))
    assert list(hists.columns) == HISTOGRAM_COLUMNS
    rows = hists[(hists["quantity"] == "hidden_grad") & (hists["layer"] == 2) & (hists["t"] == 49)]
    np.testing.assert_array_equal(rows["count"].to_numpy(), probe.hidden_grad_hist[1, -1])
    np.testing.assert_array_equal(rows["bin_start"].to_numpy(), LOG_GRAD_BINS.edges[:-1])
    act = hists[(hists["quantity"] == "activation") & (hists["layer"] == 1) & (hists["t"] == 1)]
    np.testing.assert_array_equal(act["count"].to_numpy(), probe.activation_hist[0, 0])
    assert hists.groupby(["layer", "t", "quantity"])["count"].sum().eq(len(digits[0]) * 8).all()  # no NaN here
    assert stats.dtypes["t"] == stats.dtypes["layer"] == np.int64 and hists.dtypes["count"] == np.int64


def gradient_ratio(config: RecurrentConfig, digits) -> float:
    """‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at initialisation on real digits."""
    norms = probe_through_time(build_recurrent_model(config), *digits).hidden_grad_norm[0]
    return norms[0] / norms[-1]


@pytest.mark.parametrize(("gain", "low", "high"), [(0.9, 0, 1e-3), (1.5, 1e3, np.inf)])
def test_tanh_rnn_vanishes_below_gain_one_and_explodes_above(gain, low, high, digits):
    """Pascanu et al. 2013 at init: 196 steps, orthogonal recurrent matrix times the gain."""
    config = RecurrentConfig(width=128, seq_len=196, recurrent_init="orthogonal", recurrent_gain=gain)
    assert low < gradient_ratio(config, digits) < high


@pytest.mark.parametrize(("forget_bias", "low", "high"), [(3.0, 0.1, 10), (0.0, 0, 1e-3)])
def test_lstm_forget_bias_keeps_the_gradient_through_time(forget_bias, low, high, digits):
    """Gers et al. 2000 / Jozefowicz et al. 2015: with a forget-gate bias of 3 the gradient at t = 1 stays
    within a factor of 10 of the last step's over 196 steps; with 0 (forget gates ≈ 1/2) it is lost: it
    underflows float32 to exactly 0 (hence low <= ratio)."""
    config = RecurrentConfig(kind="lstm", width=128, seq_len=196, forget_bias=forget_bias)
    assert low <= gradient_ratio(config, digits) < high


@pytest.mark.parametrize("flushing", [False, True])
def test_the_denormal_setting_is_restored(flushing, digits):
    def flushes() -> bool:
        return (torch.tensor([1e-39]) * 1.0).item() == 0.0

    torch.set_flush_denormal(flushing)
    try:
        assert flushes() is flushing
        probe_through_time(build_recurrent_model(RecurrentConfig(width=4)), *digits)
        assert flushes() is flushing
    finally:
        torch.set_flush_denormal(False)
