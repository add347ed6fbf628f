"""Recurrent runs in the engine: the through-time frames it records, checked against autograd, saved and loaded."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from engine_helpers import run_cli, strict_json, tiny_spec, zipped_run

from vg_core import budget
from vg_core.data import load
from vg_core.integrity import check_result
from vg_core.models import build_model
from vg_core.results import FRAME_COLUMNS, ResultError, RunResult
from vg_core.runfiles import load_zip
from vg_core.summary import summary_dict
from vg_core.train import train

RNN = tiny_spec(model="rnn", activation="tanh", depth=2, width=8, seq_len=28, n_train=100, probe_size=20)


@pytest.fixture(scope="module")
def rnn_result() -> RunResult:
    return train(RNN)


def oracle_norms(spec, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """‖∂L/∂h_t‖ per layer and t by an independent unroll of the fused modules' weights, h_t.retain_grad()."""
    model = build_model(spec).double()
    inputs = x.double().reshape(len(x), spec.seq_len, -1)
    hidden = []
    for index in range(spec.depth):
        rnn = getattr(model, f"rnn{index + 1}")
        h, states = torch.zeros(len(x), spec.width, dtype=torch.float64), []
        for t in range(spec.seq_len):
            pre = inputs[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
            h = torch.tanh(pre)
            h.retain_grad()
            states.append(h)
        hidden.append(states)
        inputs = torch.stack(states, dim=1)
    torch.nn.functional.cross_entropy(model.fc(hidden[-1][-1]), y).backward()
    return np.array([[float(h.grad.norm()) for h in states] for states in hidden])


def test_recorded_hidden_gradients_at_init_match_autograd(rnn_result):
    data = load(RNN.dataset, RNN.n_train, RNN.seed, RNN.probe_size, "cpu")
    expected = oracle_norms(RNN, data.x_probe, data.y_probe)
    recorded = rnn_result.hidden_grad_norms(0)
    assert sorted(recorded) == [1, 2]
    np.testing.assert_allclose([recorded[1], recorded[2]], expected, rtol=1e-4, atol=1e-12)


def test_every_snapshot_has_its_through_time_rows(rnn_result):
    stats, hists = rnn_result.time_stats, rnn_result.time_histograms
    assert (
        list(stats.columns) == FRAME_COLUMNS["time_stats"] and list(hists.columns) == FRAME_COLUMNS["time_histograms"]
    )
    norms = stats[stats["quantity"] == "hidden_grad_norm"]
    assert sorted(norms["step"].unique()) == rnn_result.snapshot_steps
    assert len(norms) == len(rnn_result.snapshot_steps) * 2 * 28
    assert set(hists["quantity"]) == {"hidden_grad", "activation"} and hists["t"].nunique() == 16
    counted = hists[hists["quantity"] == "activation"].groupby(["step", "layer", "t"])["count"].sum()
    assert (counted == RNN.probe_size * RNN.width).all()  # every h_t entry of the probe batch, once
    check_result(rnn_result, RNN)  # what the cache checks before serving it


def test_other_families_have_empty_through_time_frames_with_their_columns():
    result = train(tiny_spec(epochs=0))
    for name in ("time_stats", "time_histograms"):
        frame = getattr(result, name)
        assert frame.empty and list(frame.columns) == FRAME_COLUMNS[name]
    assert "time" not in summary_dict(result, cached=False)


def test_save_load_and_zip_round_trip(rnn_result, tmp_path):
    rnn_result.save(tmp_path / "run")
    loaded = RunResult.load(tmp_path / "run")
    for name in ("time_stats", "time_histograms"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(rnn_result, name))
    unzipped = load_zip(zipped_run(rnn_result, tmp_path / "zipped"))
    pd.testing.assert_frame_equal(unzipped.time_stats, rnn_result.time_stats, check_dtype=False)
    mlp = train(tiny_spec(epochs=0))
    mlp.save(tmp_path / "mlp")
    assert RunResult.load(tmp_path / "mlp").time_stats.empty


def test_integrity_rejects_missing_or_stray_through_time_rows(rnn_result):
    stats = rnn_result.time_stats
    last_norm = stats.index[stats["quantity"] == "hidden_grad_norm"][-1]
    dropped = dataclasses.replace(rnn_result, time_stats=stats.drop(index=last_norm))
    with pytest.raises(ResultError, match="time_stats"):
        check_result(dropped, RNN)
    beyond = stats.assign(t=stats["t"] + 1)
    with pytest.raises(ResultError, match="out of range"):
        check_result(dataclasses.replace(rnn_result, time_stats=beyond), RNN)
    mlp = train(tiny_spec(epochs=0))
    with pytest.raises(ResultError, match="through-time"):
        check_result(dataclasses.replace(mlp, time_stats=rnn_result.time_stats), mlp.spec)


def test_summary_time_lists_seq_len_norms_per_recurrent_layer(rnn_result):
    payload = summary_dict(rnn_result, cached=False)
    assert [entry["layer"] for entry in payload["time"]] == ["rnn1", "rnn2"]
    first = payload["time"][0]
    assert len(first["hidden_grad_norm_init"]) == len(first["hidden_grad_norm_final"]) == 28
    assert first["hidden_grad_norm_init"] == rnn_result.hidden_grad_norms(0)[1]
    json.dumps(payload, allow_nan=False)


def test_mlp_training_does_not_flush_denormals():
    """Only recurrent runs flush denormals (train's docstring): an MLP trains with the thread's own setting,
    and a recurrent run restores it afterwards."""
    denormal = torch.tensor([1e-39])
    assert float(denormal * 1.0) != 0.0
    train(RNN.replace(epochs=0))
    assert float(denormal * 1.0) != 0.0  # restored
    torch.set_flush_denormal(True)
    try:
        flushed = train(tiny_spec())
    finally:
        torch.set_flush_denormal(False)
    plain = train(tiny_spec())  # one epoch, probed at every snapshot
    pd.testing.assert_frame_equal(flushed.layer_stats, plain.layer_stats, rtol=1e-6)
    pd.testing.assert_frame_equal(flushed.history, plain.history, rtol=1e-6)


def test_budget_counts_time_steps_and_the_probe():
    short, long = RNN.replace(seq_len=28), RNN.replace(seq_len=196)
    # the hidden-to-hidden products run once per time step: 7x the steps, at least 5x the FLOPs of this net
    assert long.flops_per_sample > 3 * short.flops_per_sample
    assert budget.estimated_seconds(long) > 5 * budget.estimated_seconds(short)
    at_init = budget.estimated_seconds(long.replace(epochs=0)) - budget.estimated_seconds(short.replace(epochs=0))
    assert at_init >= (196 - 28) * RNN.depth * budget.TIME_PROBE_S["rnn"]  # the through-time probe at step 0
    lstm = RNN.replace(model="lstm")
    assert budget.estimated_seconds(lstm) > budget.estimated_seconds(RNN)


@pytest.mark.parametrize(
    ("model", "extra", "vanishes"),
    [("rnn", [], True), ("lstm", ["--forget-bias", "3"], False)],
)
def test_cli_run_json_prints_the_through_time_norms(model, extra, vanishes, tmp_path):
    result = run_cli(
        "run", "--model", model, *extra, "--seq-len", "196", "--depth", "1", "--width", "128",
        "--dataset", "mnist-sample", "--epochs", "0", "--json", "--quiet", cache_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (entry,) = strict_json(result.stdout)["time"]
    norms = entry["hidden_grad_norm_init"]
    assert entry["layer"] == f"{model}1" and len(norms) == 196
    ratio = norms[0] / norms[-1]
    assert (ratio < 1e-3) if vanishes else (0.1 < ratio < 10), ratio


def test_cli_compare_models(tmp_path):
    result = run_cli(
        "compare", "--models", "rnn,lstm,gru", "--seq-len", "28", "--depth", "1", "--width", "8",
        "--dataset", "mnist-sample", "--n-train", "100", "--epochs", "0", "--probe-size", "20", "--json", "--quiet",
        cache_dir=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = strict_json(result.stdout)
    runs = payload if isinstance(payload, list) else payload["runs"]
    assert [run["spec"]["model"] for run in runs] == ["rnn", "lstm", "gru"]
    assert all(len(run["time"][0]["hidden_grad_norm_init"]) == 28 for run in runs)
