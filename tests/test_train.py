"""Training: determinism, the snapshot schedule, callbacks, divergence, a hand-replicated SGD loop,
and the article's physics at initialisation on real digits."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
from engine_helpers import tiny_spec
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import vg_core.recording as recording
import vg_core.train as train_module
from vg_core.data import load
from vg_core.models import build_model
from vg_core.results import FRAMES, RunResult
from vg_core.spec import ARTICLE_SPEC, RunSpec, SpecError
from vg_core.summary import gradient_ratio, verdicts
from vg_core.train import (
    DIVERGED_LOSS_FACTOR,
    EARLY_SNAPSHOTS,
    Progress,
    make_optimizer,
    resolve_device,
    snapshot_schedule,
    steps_per_epoch,
    train,
)

# Diverge within a few steps, reliably: a linear net with N(0, 1) weights and lr 1 overflows to NaN
# in 3 steps; a 6-layer ReLU net with Kaiming init and lr 10 in 4.
DIVERGING = [
    pytest.param({"activation": "linear", "init": "normal", "init_std": 1.0, "lr": 1.0}, id="linear-sigma1-lr1"),
    pytest.param({"activation": "relu", "init": "kaiming_normal", "depth": 6, "lr": 10.0}, id="relu-kaiming-lr10"),
]


def assert_same_result(a, b) -> None:
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True, obj=name)
    strip = lambda meta: {k: v for k, v in meta.items() if k != "timings"}  # noqa: E731
    assert strip(a.meta) == strip(b.meta)


# ---------------------------------------------------------------- determinism and shapes


def test_same_spec_twice_gives_identical_results():
    spec = tiny_spec(epochs=2, norm="batch", activation="relu")
    a, b = train(spec), train(spec)
    assert_same_result(a, b)
    assert a.meta["status"] == "complete" and a.history["step"].tolist() == [0, 8, 16]
    c = train(spec.replace(seed=1))
    assert not a.steps["loss"].equals(c.steps["loss"])


def test_result_frames_have_the_documented_shape():
    spec = tiny_spec(epochs=2)
    result = train(spec)
    per_epoch = steps_per_epoch(spec.n_train, spec.batch_size)
    assert result.meta["steps_per_epoch"] == per_epoch == 8 and result.meta["total_steps"] == 16
    assert result.meta["n_parameters"] == spec.n_parameters
    assert result.meta["dataset"] == {
        "name": "mnist-sample",
        "source": result.meta["dataset"]["source"],
        "notice": None,
        "n_train": 400,
        "n_test": 1000,
        "n_probe": 100,
    }
    assert result.steps["step"].tolist() == list(range(1, 17))
    np.testing.assert_allclose(result.steps["epoch"], np.arange(1, 17) / 8)
    assert len(result.layer_steps) == 16 * (spec.depth + 1)
    assert sorted(result.layer_steps["layer"].unique()) == [1, 2, 3, 4]
    assert result.snapshot_steps == snapshot_schedule(8, 2)
    history = result.history
    assert history["epoch"].tolist() == [0.0, 1.0, 2.0]
    assert history[["train_loss", "test_loss"]].gt(0).all().all()
    assert history[["train_acc", "test_acc"]].apply(lambda c: c.between(0, 1)).all().all()
    # the epoch-end training loss is the mean of that epoch's batch losses (equal batches here)
    assert history["train_loss"].iloc[1] == pytest.approx(result.steps["loss"].iloc[:8].mean(), rel=1e-5)
    assert result.steps["loss"].notna().all()


def test_stat_lookups_are_the_long_frame_filtered():
    """RunResult.stat_rows and stat split layer_stats once; each lookup is the frame filtered as before."""
    result = train(tiny_spec(epochs=2))
    stats = result.layer_stats
    for quantity in stats["quantity"].unique():
        rows = stats[stats["quantity"] == quantity]
        for step in [*rows["step"].unique(), None, -1]:
            expected = rows[rows["step"] == (rows["step"].max() if step is None else step)]
            pd.testing.assert_frame_equal(result.stat_rows(quantity, step), expected)
            stat = expected.set_index("layer")["value"].sort_index()
            pd.testing.assert_series_equal(result.stat(quantity, step), stat)
    assert result.stat_rows("no such quantity").empty


def test_init_evaluation_matches_a_direct_computation():
    spec = tiny_spec(epochs=0)
    result = train(spec)
    ds = load(spec.dataset, spec.n_train, spec.seed, spec.probe_size, "cpu")
    model = build_model(spec)
    with torch.no_grad():
        test_logits, train_logits = model(ds.x_test), model(ds.x_train)
    row = result.history.iloc[0]
    assert row["test_loss"] == pytest.approx(F.cross_entropy(test_logits, ds.y_test).item(), rel=1e-5)
    assert row["test_acc"] == pytest.approx((test_logits.argmax(1) == ds.y_test).float().mean().item())
    assert row["train_loss"] == pytest.approx(F.cross_entropy(train_logits, ds.y_train).item(), rel=1e-5)


def test_zero_epochs_records_only_the_initial_snapshot():
    result = train(tiny_spec(epochs=0))
    assert result.meta["status"] == "complete" and result.meta["total_steps"] == 0
    assert result.snapshot_steps == [0]
    assert result.history["step"].tolist() == [0]
    assert result.steps.empty and result.layer_steps.empty
    assert list(result.steps.columns) == ["step", "epoch", "loss"]
    assert set(result.histograms["step"]) == {0}
    assert "update_ratio" not in set(result.layer_stats["quantity"])  # no step led to step 0


def test_no_probes_mode_snapshots_only_start_and_end():
    result = train(tiny_spec(epochs=2), probes=False)
    assert result.snapshot_steps == [0, 16]
    assert len(result.steps) == 16


# ---------------------------------------------------------------- the snapshot schedule


def test_snapshot_schedule_of_the_article_run():
    per_epoch = steps_per_epoch(60_000, 100)
    assert per_epoch == 600
    schedule = snapshot_schedule(per_epoch, 10)
    assert schedule[:3] == [0, 1, 2]
    assert [s for s in schedule if s > per_epoch] == [600 * e for e in range(2, 11)]
    early = [s for s in schedule if 0 < s <= per_epoch]
    assert early[-1] == 600 and 15 <= len(early) <= EARLY_SNAPSHOTS
    ratios = np.diff(np.log(early))
    assert ratios.max() < 3 * ratios[ratios > 0].min() + 0.5  # roughly geometric spacing
    assert 25 <= len(schedule) <= 31  # ~30 snapshots for 10 epochs


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 100))
def test_snapshot_schedule_properties(per_epoch, epochs):
    schedule = snapshot_schedule(per_epoch, epochs)
    assert schedule[0] == 0
    assert schedule == sorted(set(schedule))
    if epochs == 0:
        assert schedule == [0]
        return
    assert schedule[-1] == per_epoch * epochs
    assert {per_epoch * (e + 1) for e in range(epochs)} <= set(schedule)
    assert all(isinstance(s, int) for s in schedule)
    assert len([s for s in schedule if 0 < s < per_epoch]) <= EARLY_SNAPSHOTS


@pytest.mark.parametrize(
    ("n", "batch", "expected"), [(400, 50, 8), (401, 50, 8), (402, 50, 9), (1, 100, 1), (7, 1, 7), (60_000, 100, 600)]
)
def test_steps_per_epoch_keeps_the_last_partial_batch(n, batch, expected):
    assert steps_per_epoch(n, batch) == expected


def test_partial_last_batch_is_trained():
    result = train(tiny_spec(n_train=130, batch_size=50))
    assert result.meta["steps_per_epoch"] == 3 and len(result.steps) == 3


# ---------------------------------------------------------------- callbacks


def test_callback_gets_progress_and_partial_results():
    spec = tiny_spec(n_train=1000, batch_size=10, epochs=1, probe_size=50)  # 100 steps, ~20 snapshots
    seen: list[Progress] = []
    partials: dict[int, RunResult] = {}  # built within the callback, as the page does

    def callback(progress: Progress) -> None:
        seen.append(progress)
        if progress.partial is not None:
            partials[progress.step] = progress.partial()

    result = train(spec, callback=callback)
    steps = [p.step for p in seen]
    assert steps == list(range(0, 101))
    assert all(p.total_steps == 100 for p in seen)
    assert [p.fraction for p in seen[:3]] == [0.0, 0.01, 0.02] and seen[-1].fraction == 1.0
    assert seen[50].epoch == pytest.approx(0.5)
    assert list(partials) == result.snapshot_steps
    assert len(result.snapshot_steps) < 100  # not every step is a snapshot
    for step, partial in partials.items():
        assert partial.snapshot_steps[-1] == step
        assert partial.steps["step"].max() == step if step else partial.steps.empty
        assert partial.meta["status"] == "running"
    assert partials[100].history["step"].tolist() == [0, 100]


LIVE_STEPS = (9, 47, 66)  # not snapshots of the spec below: one in its first epoch, two in its second


@pytest.mark.parametrize("model", ["mlp", "rnn"])
def test_a_live_probe_is_shown_and_not_recorded(monkeypatch, model):
    """Between snapshots Progress.live gives the result so far with a probe of the model now: the numbers a
    snapshot at that step records (the oracle: the same run with those steps added to its schedule, which
    trains the same, probes leaving the model as it was), while the run records what it records unwatched."""
    recurrent = {"activation": "tanh", "depth": 1, "width": 16, "seq_len": 28} if model == "rnn" else {}
    spec = tiny_spec(model=model, n_train=400, batch_size=10, epochs=2, probe_size=50, **recurrent)  # 80 steps
    unwatched = train(spec)
    assert not set(LIVE_STEPS) & set(unwatched.snapshot_steps)
    lives: dict[int, RunResult] = {}

    def watch(progress: Progress) -> None:
        if progress.step in LIVE_STEPS:
            assert progress.partial is None
            lives[progress.step] = progress.live()

    watched = train(spec, callback=watch)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(watched, name), getattr(unwatched, name))
    schedule = train_module.snapshot_schedule
    monkeypatch.setattr(train_module, "snapshot_schedule", lambda *a: sorted({*schedule(*a), *LIVE_STEPS}))
    oracle = train(spec)
    for step, live in lives.items():
        assert live.snapshot_steps == [*(s for s in unwatched.snapshot_steps if s < step), step]
        assert live.meta["status"] == "running"
        pd.testing.assert_frame_equal(live.steps, unwatched.steps[unwatched.steps["step"] <= step])

        def oracle_rows(name: str, step: int = step, steps: list[int] = live.snapshot_steps) -> pd.DataFrame:
            frame = getattr(oracle, name)
            if name == "layer_stats":  # a live probe has no update ratio (no step before it is kept)
                frame = frame[(frame["quantity"] != "update_ratio") | (frame["step"] != step)]
            return frame[frame["step"].isin(steps)].reset_index(drop=True)

        for name in ("layer_stats", "histograms", "time_stats", "time_histograms"):
            pd.testing.assert_frame_equal(getattr(live, name).reset_index(drop=True), oracle_rows(name))
        assert len(live.time_stats) > 0 if model == "rnn" else live.time_stats.empty
    assert watched.meta["timings"]["live_s"] > 0 and unwatched.meta["timings"]["live_s"] == 0


def test_a_live_probe_leaves_merged_step_rows_as_they_are(monkeypatch):
    """Past MAX_STEP_POINTS rows merge steps; a live look between syncs must not change how they merge."""
    monkeypatch.setattr(recording, "MAX_STEP_POINTS", 30)
    spec = tiny_spec(n_train=400, batch_size=10, epochs=2)  # 80 steps: rows of 3
    unwatched = train(spec)
    lives: dict[int, RunResult] = {}

    def watch(progress: Progress) -> None:
        if progress.live is not None and progress.step % 5 == 0:
            lives[progress.step] = progress.live()

    watched = train(spec, callback=watch)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(watched, name), getattr(unwatched, name))
    assert watched.meta["steps_per_point"] == 3 and len(lives) > 5
    for step, live in lives.items():
        assert live.steps["step"].tolist() == [*range(3, step + 1, 3), *([step] if step % 3 else [])]
        closed = live.steps[live.steps["step"] % 3 == 0]
        expected = unwatched.steps[unwatched.steps["step"].isin(closed["step"])]
        np.testing.assert_allclose(closed["loss"].to_numpy(), expected["loss"].to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("stop_at", [0, 3])
def test_callback_returning_true_stops_the_run(stop_at):
    calls = []

    def callback(progress: Progress) -> bool:
        calls.append(progress.step)
        return progress.step >= stop_at

    result = train(tiny_spec(epochs=3), callback=callback)
    assert result.meta["status"] == "stopped"
    assert calls[-1] == stop_at  # nothing ran after it asked to stop
    assert result.snapshot_steps[-1] == stop_at
    assert len(result.steps) == stop_at
    assert result.history["step"].tolist() == [0]
    assert result.diverged_at_step is None


def test_zero_epochs_callback_fraction_is_one():
    seen = []
    train(tiny_spec(epochs=0), callback=seen.append)
    assert len(seen) == 1 and seen[0].fraction == 1.0 and seen[0].partial is not None


# ---------------------------------------------------------------- divergence


@pytest.mark.parametrize("config", DIVERGING)
def test_divergence_is_caught_and_recorded(config):
    spec = tiny_spec(epochs=2, **config)
    result = train(spec)
    assert result.meta["status"] == "diverged"
    step = result.diverged_at_step
    assert isinstance(step, int) and 1 <= step < result.meta["total_steps"]
    losses = result.steps.set_index("step")["loss"]
    # the first batch loss that is non-finite or past the limit is the one reported; the data before it is kept
    limit = DIVERGED_LOSS_FACTOR * max(result.history["train_loss"].iloc[0], np.log(10))
    assert losses.index.tolist() == list(range(1, step + 1))
    assert (np.isfinite(losses.loc[: step - 1]) & (losses.loc[: step - 1] <= limit)).all()
    assert not np.isfinite(losses.loc[step]) or losses.loc[step] > limit
    assert result.history["step"].tolist() == [0]
    assert result.snapshot_steps[0] == 0 and result.snapshot_steps[-1] == step
    assert set(result.snapshot_steps) >= {s for s in snapshot_schedule(8, 2) if s < step}
    # the probe at the diverged step counts its NaN gradients instead of dropping them
    stats = result.layer_stats[result.layer_stats["step"] == step]
    nan = stats[stats["quantity"] == "weight_grad_nan"].set_index("layer")["value"]
    assert nan.sum() > 0 or np.isfinite(losses.loc[step])
    hist = result.histograms
    at_step = hist[(hist["step"] == step) & (hist["quantity"] == "weight_grad")].groupby("layer")["count"].sum()
    specials = (
        stats[stats["quantity"].isin(["weight_grad_zeros", "weight_grad_nan", "weight_grad_inf"])]
        .groupby("layer")["value"]
        .sum()
    )
    numel = pd.Series([spec.width * 784] + [spec.width**2] * (spec.depth - 1) + [10 * spec.width], index=nan.index)
    pd.testing.assert_series_equal(
        (at_step + specials).astype(float), numel.astype(float), check_names=False, check_index_type=False
    )
    # the verdict says so
    assert verdicts(result)[0].key == "diverged" and verdicts(result)[0].values["step"] == step


def test_a_run_whose_last_step_blows_up_is_not_reported_complete():
    """One training step whose batch loss is finite but whose update sends the weights so far that the
    final evaluation's loss, and every probe gradient, is NaN: that run diverged.

    Fails today: train() only checks the batch losses, which are computed before each update, so a
    blow-up in the last step ends as status "complete" with a NaN test loss (see the report)."""
    spec = tiny_spec(n_train=50, batch_size=50, activation="linear", init="normal", init_std=3.0, lr=1.0, depth=5)
    result = train(spec)
    assert result.meta["total_steps"] == 1
    assert np.isfinite(result.steps["loss"]).all()  # the scenario: the batch loss was finite ...
    assert not np.isfinite(result.history["test_loss"].iloc[-1])  # ... the loss after the step is not
    assert result.stat("weight_grad_nan").sum() > 0
    assert result.meta["status"] == "diverged"
    assert result.diverged_at_step == 1


def test_a_healthy_run_does_not_diverge():
    result = train(tiny_spec(epochs=1, activation="relu", init="kaiming_normal", lr=0.05))
    assert result.meta["status"] == "complete" and result.diverged_at_step is None
    assert np.isfinite(result.steps["loss"]).all()


# ---------------------------------------------------------------- the loop, replicated by hand


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_and_update_ratios_match_a_hand_written_loop(optimizer):
    spec = tiny_spec(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-3, epochs=1)
    result = train(spec)
    per_epoch = result.meta["steps_per_epoch"]
    assert result.snapshot_steps == list(range(per_epoch + 1))  # 8 steps: every one is a snapshot

    ds = load(spec.dataset, spec.n_train, spec.seed, spec.probe_size, "cpu")
    model = build_model(spec)
    weights = [linear.weight for linear in model.linears]
    params = list(model.parameters())
    order = torch.randperm(len(ds.x_train), generator=torch.Generator().manual_seed(spec.seed))
    momentum = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    for step in range(1, per_epoch + 1):
        index = order[(step - 1) * spec.batch_size : step * spec.batch_size]
        loss = F.cross_entropy(model(ds.x_train[index]), ds.y_train[index])
        grads = torch.autograd.grad(loss, params)
        before = [w.detach().clone() for w in weights]
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads)):
                if optimizer == "sgd":  # PyTorch's SGD: buf = m * buf + g (buf = g at first), p -= lr * buf
                    momentum[i] = g.clone() if step == 1 else spec.momentum * momentum[i] + g
                    p -= spec.lr * momentum[i]
                else:  # Adam, betas (0.9, 0.999), eps 1e-8, bias-corrected
                    momentum[i] = 0.9 * momentum[i] + 0.1 * g
                    second[i] = 0.999 * second[i] + 0.001 * g * g
                    m_hat, v_hat = momentum[i] / (1 - 0.9**step), second[i] / (1 - 0.999**step)
                    p -= spec.lr * m_hat / (v_hat.sqrt() + 1e-8)
        weight_grads = [grads[next(i for i, p in enumerate(params) if p is w)] for w in weights]
        expected_ratio = [((w - b).norm() / b.norm()).item() for w, b in zip(weights, before)]

        assert result.steps.set_index("step").loc[step, "loss"] == pytest.approx(loss.item(), rel=1e-4)
        norms = result.layer_steps[result.layer_steps["step"] == step].sort_values("layer")["weight_grad_norm"]
        np.testing.assert_allclose(norms, [g.norm().item() for g in weight_grads], rtol=1e-4)
        np.testing.assert_allclose(result.stat("update_ratio", step), expected_ratio, rtol=1e-3)
        if step == 1 and optimizer == "sgd":
            # first SGD step: W1 - W0 = -lr * g exactly, so the ratio is lr * |g| / |W0|
            np.testing.assert_allclose(
                expected_ratio,
                [spec.lr * g.norm().item() / b.norm().item() for g, b in zip(weight_grads, before)],
                rtol=1e-4,  # |W0 - lr g - W0| in float32 loses a few digits of lr |g|
            )


@pytest.mark.parametrize(
    "params", [{"optimizer": "sgd", "lr": 0.05}, {"optimizer": "sgd", "momentum": 0.0}, {"optimizer": "adam"}]
)
def test_the_optimiser_is_torch_optims_bit_for_bit(params):
    spec = tiny_spec(**params, norm="batch")
    ours, theirs = build_model(spec), build_model(spec)
    reference = (
        torch.optim.Adam(theirs.parameters(), lr=spec.lr, fused=True)
        if spec.optimizer == "adam"
        else torch.optim.SGD(theirs.parameters(), lr=spec.lr, momentum=spec.momentum, fused=True)
    )
    optimizer = make_optimizer(spec, ours)
    data = load(spec.dataset, spec.n_train, spec.seed, spec.probe_size, "cpu")
    for step in range(6):
        index = slice(step * spec.batch_size, (step + 1) * spec.batch_size)
        for model, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            F.cross_entropy(model(data.x_train[index]), data.y_train[index]).backward()
            if step == 2:  # a parameter without a gradient is left alone, its state too
                model.fc1.linear.bias.grad = None
            opt.step()
        for mine, reference_param in zip(ours.parameters(), theirs.parameters()):
            assert torch.equal(mine, reference_param)


def test_training_does_not_import_the_compiler():
    """torch.optim.Optimizer imports torch._dynamo (~1.5 s); a run, as the CLI starts one, must not need it."""
    code = (
        "import sys, vg_core.cli as cli; "
        "cli.main(['run', '--dataset', 'mnist-sample', '--n-train', '200', '--depth', '2', '--width', '8', "
        "'--epochs', '1', '--quiet', '--cache-dir', sys.argv[1]]); "
        "sys.exit(3 if 'torch._dynamo' in sys.modules else 0)"
    )
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", code, cache], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:] or "torch._dynamo was imported"


# ---------------------------------------------------------------- devices


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    if torch.cuda.is_available():
        assert auto.type == "cuda"
    elif not torch.backends.mps.is_available():
        assert auto == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda_is_a_spec_error():
    with pytest.raises(SpecError, match=r"^device: cuda is not available"):
        resolve_device("cuda")
    with pytest.raises(SpecError, match="device: cuda"):
        train(tiny_spec(device="cuda"))


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_unavailable_mps_is_a_spec_error():
    with pytest.raises(SpecError, match=r"^device: mps is not available"):
        resolve_device("mps")


# ---------------------------------------------------------------- the physics, on real digits


def test_article_sigmoid_net_vanishes_at_initialisation():
    """The article's 784-1000x5-10 sigmoid net, default init: fc1's weight gradients are orders of
    magnitude smaller than the last hidden layer's, and shrink layer by layer going backwards."""
    spec = ARTICLE_SPEC.replace(dataset="mnist-sample", epochs=0, device="cpu")
    result = train(spec)
    norms = result.stat("weight_grad_norm", 0)
    assert norms.index.tolist() == [1, 2, 3, 4, 5, 6]
    assert (norms > 0).all()
    ratio = gradient_ratio(result, 0)
    assert ratio == pytest.approx(norms[1] / norms[5])
    assert ratio < 1e-2  # at least two orders of magnitude (it is ~1e-3)
    assert norms.loc[1:5].is_monotonic_increasing
    assert verdicts(result)[0].key == "flow.vanishing"
    # sigmoid units near their centre: derivative <= 1/4 per layer, the cause of the decay
    assert result.stat("act_mean", 0).loc[1:5].between(0.3, 0.7).all()


def test_deep_relu_net_with_kaiming_init_does_not_vanish():
    spec = RunSpec(
        dataset="mnist-sample",
        activation="relu",
        init="kaiming_normal",
        depth=20,
        width=256,
        epochs=0,
        device="cpu",
    )
    result = train(spec)
    ratio = gradient_ratio(result, 0)
    assert 0.1 < ratio < 10  # within an order of magnitude across 20 layers
    norms = result.stat("weight_grad_norm", 0).loc[1:20]
    assert norms.max() / norms.min() < 20
    assert verdicts(result)[0].key == "flow.even"
    # and the same depth with sigmoid does vanish, by far
    sigmoid = train(spec.replace(activation="sigmoid", init="default"))
    assert gradient_ratio(sigmoid, 0) < 1e-6
    assert math.isfinite(gradient_ratio(sigmoid, 0))


# ---------------------------------------------------------------- reliability: divergence without NaN, long runs


def test_a_loss_that_explodes_without_nan_is_a_divergence():
    """tanh with lr 10 never overflows (tanh is bounded) but its loss climbs far past chance: diverged."""
    spec = tiny_spec(activation="tanh", lr=10.0, epochs=2)
    result = train(spec)
    assert np.isfinite(result.steps["loss"]).all()  # the scenario: no NaN, no inf anywhere
    limit = DIVERGED_LOSS_FACTOR * max(result.history["train_loss"].iloc[0], np.log(10))
    step = result.diverged_at_step
    assert result.meta["status"] == "diverged" and isinstance(step, int)
    assert result.steps["loss"].iloc[-1] > limit and (result.steps["loss"].iloc[:-1] <= limit).all()
    assert result.steps["step"].iloc[-1] == step
    assert verdicts(result)[0].level == "error" and f"step {step}" in verdicts(result)[0].text


def test_per_step_scalars_stay_bounded_and_average_consecutive_steps(monkeypatch):
    """Past MAX_STEP_POINTS, each per-step row is the mean of `steps_per_point` consecutive steps."""
    spec = tiny_spec(n_train=400, batch_size=10, epochs=2)  # 80 steps
    exact = train(spec)
    monkeypatch.setattr(recording, "MAX_STEP_POINTS", 30)
    bounded = train(spec)
    assert exact.meta["steps_per_point"] == 1 and bounded.meta["steps_per_point"] == 3
    assert len(bounded.steps) == 27 <= 30 and len(bounded.layer_steps) == 27 * (spec.depth + 1)
    assert bounded.steps["step"].tolist() == [*range(3, 81, 3), 80]
    buckets = (exact.steps["step"] - 1) // 3
    means = exact.steps.groupby(buckets)["loss"].mean().to_numpy()
    np.testing.assert_allclose(bounded.steps["loss"].to_numpy(), means, rtol=1e-5)
    norms = exact.layer_steps.assign(bucket=(exact.layer_steps["step"] - 1) // 3)
    expected = norms.groupby(["bucket", "layer"])["weight_grad_norm"].mean().to_numpy()
    np.testing.assert_allclose(bounded.layer_steps["weight_grad_norm"].to_numpy(), expected, rtol=1e-5)
    pd.testing.assert_frame_equal(bounded.history, exact.history)


@pytest.mark.parametrize(("n_train", "batch_size"), [(101, 50), (4000, 3), (2, 1)])
def test_a_last_batch_of_one_sample_joins_the_one_before(n_train, batch_size):
    """Batch norm cannot train on one sample; every n_train / batch_size combination trains."""
    norm = "batch" if batch_size > 1 else "layer"
    spec = tiny_spec(n_train=n_train, batch_size=batch_size, norm=norm, depth=2, width=8, probe_size=20)
    result = train(spec)
    assert result.meta["status"] == "complete"
    assert result.meta["steps_per_epoch"] == steps_per_epoch(n_train, batch_size) == n_train // batch_size
