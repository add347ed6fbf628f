"""vg_core.watch on the user's own model and loop: the engine's numbers, any layer, the model untouched."""

from __future__ import annotations

import contextlib
import copy
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from engine_helpers import REPO, run_cli, tiny_spec
from torch import nn

from vg_core import data as datasets
from vg_core import watch
from vg_core.models import build_model
from vg_core.probes import find_layers
from vg_core.recording import StepRecorder
from vg_core.results import Recorder
from vg_core.runfiles import open_run
from vg_core.train import make_optimizer, steps_per_epoch, train
from vg_core.watcher import OPEN_EVERY, Watch

sys.path.insert(0, str(REPO / "examples"))
from watch_lstm import RowLSTM
from watch_transformer import RowTransformer

RESNET_LAYERS = [
    "conv1",
    *(f"layer1.{b}.conv{c}" for b in (0, 1) for c in (1, 2)),
    *(
        name
        for stage in (2, 3, 4)
        for name in (
            f"layer{stage}.0.conv1",
            f"layer{stage}.0.conv2",
            f"layer{stage}.0.downsample.0",
            f"layer{stage}.1.conv1",
            f"layer{stage}.1.conv2",
        )
    ),
    "fc",
]
TRANSFORMER_LAYERS = [
    "embed",
    "position",
    *(f"encoder.layers.{i}.{part}" for i in (0, 1) for part in ("self_attn.out_proj", "linear1", "linear2")),
    "head",
]


def small_resnet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10)


def models() -> dict[str, tuple[nn.Module, torch.Tensor, list[str]]]:
    """name -> (model, a small input batch, the layers watch must find)."""
    torch.manual_seed(0)
    rows = torch.randn(6, 28, 28)
    return {
        "resnet18": (small_resnet(), torch.randn(4, 3, 28, 28), RESNET_LAYERS),
        "lstm": (RowLSTM(hidden=8), rows, ["lstm", "head"]),
        "transformer": (RowTransformer(width=16, heads=2), rows, TRANSFORMER_LAYERS),
    }


def watched_run(model: nn.Module, x: torch.Tensor, steps: int = 1, **options) -> Watch:
    """`steps` SGD steps of `model` on (x, random labels), watched with (x, y) as the probe batch."""
    y = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, probe=(x, y), name="test", **options) as w:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            w.step(loss)
            optimizer.step()
    return w


def test_vg_core_watch_is_the_function_however_the_package_was_imported():
    """`vg_core.watch` is loaded on first use (the command line's help needs no torch); it is never its module."""
    import vg_core
    import vg_core.watcher

    assert vg_core.watch is vg_core.watcher.watch is watch
    with pytest.raises(AttributeError, match="no_such_name"):
        vg_core.no_such_name  # noqa: B018


def test_the_same_numbers_as_the_engine() -> None:
    spec = tiny_spec(norm="batch")
    engine = train(spec)
    data = datasets.load(spec.dataset, spec.n_train, spec.seed, spec.probe_size, "cpu")
    model = build_model(spec)
    optimizer = make_optimizer(spec, model)
    total = steps_per_epoch(len(data.x_train), spec.batch_size) * spec.epochs
    order = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(spec.seed))
    with watch(model, probe=(data.x_probe, data.y_probe), name="mlp", total_steps=total) as w:
        for start in range(0, len(order), spec.batch_size):
            index = order[start : start + spec.batch_size]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(data.x_train[index]), data.y_train[index])
            loss.backward()
            w.step(loss)
            optimizer.step()
    ours = w.result
    assert ours.meta["layers"] == [f"fc{i}.linear" for i in range(1, spec.depth + 1)] + [f"fc{spec.depth + 1}"]
    np.testing.assert_allclose(ours.steps["loss"], engine.steps["loss"], rtol=1e-6)
    np.testing.assert_allclose(ours.layer_steps["weight_grad_norm"], engine.layer_steps["weight_grad_norm"], rtol=1e-6)
    common = sorted(set(ours.snapshot_steps) & set(engine.snapshot_steps))
    assert common == engine.snapshot_steps  # one epoch: the engine's schedule is watch's with total_steps
    for frame in ("layer_stats", "histograms"):
        mine, theirs = getattr(ours, frame), getattr(engine, frame)
        pd.testing.assert_frame_equal(
            mine[mine["step"].isin(common)].reset_index(drop=True),
            theirs[theirs["step"].isin(common)].reset_index(drop=True),
            rtol=1e-5,
            atol=1e-7,
        )


@pytest.mark.parametrize("name", ["resnet18", "lstm", "transformer"])
def test_layers_found_and_histograms_add_up(name: str) -> None:
    model, x, expected = models()[name]
    result = watched_run(model, x).result
    assert result.layer_names == expected
    assert result.snapshot_steps == [0, 1]
    stats = result.layer_stats.set_index(["step", "layer", "quantity"])["value"]
    hist = result.histograms.groupby(["step", "layer", "quantity"])["count"].sum()
    for number, layer in enumerate(find_layers(model), 1):
        for step in (0, 1):
            missing = sum(stats[(step, number, f"weight_grad_{kind}")] for kind in ("zeros", "nan", "inf"))
            assert hist[(step, number, "weight_grad")] + missing == sum(w.numel() for w in layer.weights)
            if (step, number, "activation") in hist.index:
                counted = hist[(step, number, "activation")] + stats[(step, number, "act_nan")]
                assert counted == _activation_count(model, x, layer)


def _activation_count(model: nn.Module, x: torch.Tensor, layer) -> int:
    """Elements the layer's activation produced on x (every call), counted by a hook of this test's own."""
    seen = []
    module = layer.module if layer.output_is_activation else layer.activation
    handle = module.register_forward_hook(lambda m, i, o: seen.append((o[0] if isinstance(o, tuple) else o).numel()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return sum(seen)


@pytest.mark.parametrize(
    ("name", "checked"),
    [
        ("resnet18", ["conv1", "layer2.0.downsample.0", "fc"]),
        ("lstm", ["lstm", "head"]),
        ("transformer", ["embed", "encoder.layers.1.linear1", "head"]),
    ],
)
def test_autograd_oracle(name: str, checked: list[str]) -> None:
    """At step 0: each layer's weight-gradient norm and output-gradient norm against torch's own autograd."""
    model, x, _ = models()[name]
    fresh = copy.deepcopy(model)
    w = watched_run(model, x)
    stats = w.result.layer_stats.set_index(["step", "layer", "quantity"])["value"]
    modules = dict(fresh.named_modules())
    outputs = {}

    def keep(path: str):
        def hook(module, inputs, output) -> None:
            outputs.setdefault(path, output[0] if isinstance(output, tuple) else output)

        return hook

    handles = [modules[path].register_forward_hook(keep(path)) for path in checked]
    loss = nn.functional.cross_entropy(fresh(x), w.y)
    for handle in handles:
        handle.remove()
    grads = torch.autograd.grad(loss, [outputs[path] for path in checked], retain_graph=True)
    loss.backward()
    for path, grad_out in zip(checked, grads):
        number = w.result.layer_names.index(path) + 1
        weights = [p for n, p in modules[path].named_parameters() if n.startswith("weight")]
        weight_norm = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in weights]))
        assert stats[(0, number, "weight_grad_norm")] == pytest.approx(float(weight_norm), rel=1e-4)
        assert stats[(0, number, "grad_out_norm")] == pytest.approx(float(grad_out.norm()), rel=1e-4)


def state(model: nn.Module) -> list:
    return [
        [p.detach().clone() for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [b.clone() for b in model.buffers()],
        [m.training for m in model.modules()],
    ]


def assert_same_state(before: list, after: list) -> None:
    for old, new in zip(before[:3], after[:3]):
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(old, new))
    assert before[3] == after[3]


def test_a_probe_changes_nothing() -> None:
    model = small_resnet()
    model.layer1.eval()  # a frozen part in eval mode must stay so
    x, y = torch.randn(4, 3, 28, 28), torch.arange(4)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    before = state(model)
    with watch(model, probe=(torch.randn(8, 3, 28, 28), torch.arange(8)), name="probe") as w:
        w.step(loss)  # probes step 0; leaving the block probes step 1 (no optimizer step was taken)
    assert w.result.snapshot_steps == [0, 1]
    assert_same_state(before, state(model))
    assert w.result.stat("weight_grad_norm").notna().all()


def test_a_probe_leaves_the_training_randomness_alone() -> None:
    """Dropout draws in a probe come from a forked generator: a watched loop ends on the same weights."""

    def trained(watched: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        probe = (torch.randn(8, 6), torch.arange(8) % 3)
        with watch(model, probe=probe, every=1) if watched else contextlib.nullcontext() as w:
            for _ in range(4):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(torch.randn(5, 6)), torch.arange(5) % 3)
                loss.backward()
                if w is not None:
                    w.step(loss)
                optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(trained(False), trained(True)))


def no_hooks(model: nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())


def test_hooks_are_gone_after_the_block_and_after_an_exception() -> None:
    model, x, _ = models()["lstm"]
    watched_run(model, x, steps=2)
    assert no_hooks(model)

    def failing_loss(output, target):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"), watch(model, probe=(x, x), loss_fn=failing_loss) as w:
        loss = model(x).sum()
        loss.backward()
        w.step(loss)
    assert no_hooks(model)
    assert w.result.meta["status"] == "stopped"


def test_saved_run_opens_equal_and_show_names_module_paths(tmp_path: Path) -> None:
    model, x, expected = models()["lstm"]
    result = watched_run(model, x, steps=3).result
    result.save(tmp_path / "run")
    loaded = open_run(tmp_path / "run")
    for frame in ("steps", "layer_steps", "layer_stats", "histograms"):
        pd.testing.assert_frame_equal(getattr(loaded, frame), getattr(result, frame), check_dtype=False)
    assert (loaded.spec, loaded.label, loaded.layer_names) == (None, "test", expected)
    assert loaded.meta["status"] == "complete" and loaded.meta["total_steps"] == 3
    shown = run_cli("show", str(tmp_path / "run"))
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^\s*lstm\s", shown.stdout, re.M) and re.search(r"^\s*head\s", shown.stdout, re.M)


def test_the_readme_recipe_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (REPO / "README.md").read_text()
    recipe = re.search(r"```python\n(from vg_core import watch\n.*?)```", readme, re.S).group(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    batches = [(torch.randn(4, 5), torch.randint(0, 3, (4,))) for _ in range(3)]
    names = {
        "model": model,
        "x_probe": torch.randn(6, 5),
        "y_probe": torch.randint(0, 3, (6,)),
        "criterion": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "loader": batches,
    }
    monkeypatch.chdir(tmp_path)
    exec(recipe, names)
    run = open_run(tmp_path / "runs" / "my-net")
    assert run.layer_names == ["0", "2"] and run.meta["total_steps"] == 3


def test_snapshot_schedules() -> None:
    model, x = nn.Linear(3, 2), torch.randn(2, 3)
    default = watch(model, probe=(x, torch.arange(2)))
    powers = [2**k for k in range(20) if 2**k < OPEN_EVERY]
    expected = [0, *powers, OPEN_EVERY, 2 * OPEN_EVERY, 3 * OPEN_EVERY]
    assert [s for s in range(3 * OPEN_EVERY + 1) if default.due(s)] == expected
    assert [s for s in range(10) if watch(model, probe=(x, x), every=3).due(s)] == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="every must be a positive int"):
        watch(model, probe=(x, x), every=0)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        watch(model, probe=(x, x), layers=["nope"])


def test_the_step_log_is_bounded_by_merging_rows() -> None:
    model = nn.Linear(2, 2)
    recorder = Recorder(None, {}, activation="linear")
    log = StepRecorder(model, find_layers(model), recorder, torch.device("cpu"), capacity=3, max_rows=4)
    model.weight.grad = torch.ones(2, 2)
    for value in range(1, 12):
        log.record(torch.tensor(float(value)))
    log.sync(log.step)
    assert log.stride == 4 and len(recorder.steps) == 3  # rows of 4, 4 and the newest 3 steps
    assert recorder.steps["step"].tolist() == [4, 8, 11]
    assert recorder.steps["loss"].tolist() == [2.5, 6.5, 10.0]
    assert recorder.layer_steps["weight_grad_norm"].tolist() == [2.0, 2.0, 2.0]


def test_the_step_log_names_the_exact_diverged_step_across_buffer_moves() -> None:
    """A loss over the limit found when the device buffer is moved out is still the answer at the next check."""
    model = nn.Linear(2, 2)
    recorder = Recorder(None, {}, activation="linear")
    log = StepRecorder(model, find_layers(model), recorder, torch.device("cpu"), total_steps=11, capacity=3)
    log.loss_limit = 5.5
    model.weight.grad = torch.ones(2, 2)
    for value in range(1, 12):
        log.record(torch.tensor(float(value)))
    assert log.first_diverged(log.step) == 6 and log.first_diverged(log.step) == 6
    assert recorder.meta["steps_per_point"] == 1 and recorder.steps["step"].tolist() == list(range(1, 10))
