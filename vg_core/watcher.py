"""vg_core.watch: the explorer's probes on any torch.nn.Module, in the user's own training loop.

    with watch(model, probe=(x_probe, y_probe), loss_fn=criterion, name="my-net") as w:
        for x, y in loader:
            optimizer.zero_grad(); loss = criterion(model(x), y); loss.backward()
            w.step(loss)            # per-step loss and per-layer gradient norms; probes at the snapshot schedule
            optimizer.step()
    w.result.save("runs/my-net")    # Parquet + JSON, the same format as every cached run

It records what the engine records for its built-in runs (vg_core.recording, the same code): every step's loss
and weight-gradient norms, and at snapshot steps one probe pass on the fixed probe batch plus the update/weight
ratio of the optimizer step that led there. The model is left as it was after each probe (see probe_batch).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType

import torch
from torch import nn

from .models import ACTIVATION_MODULES
from .probes import Layer, find_layers
from .recording import StepRecorder
from .results import Recorder, RunResult
from .train import snapshot_schedule

# Without total_steps or every: probes at steps 0, 1, 2, 4, ..., OPEN_EVERY, then every OPEN_EVERY steps.
OPEN_EVERY = 256
ACTIVATION_NAMES = {module: name for name, module in ACTIVATION_MODULES.items()}
LossFn = Callable[..., torch.Tensor]


class Watch:
    """A watched training run: `with watch(model, probe=(x, y)) as w:`, `w.step(loss)` each step, `w.result`.

    probe: a fixed (x, y) batch, probed at every snapshot (moved to the model's device).
    loss_fn: loss_fn(model(x), y) on the probe batch, as in training (default: cross-entropy); it receives the
        model's output as it is, so a model returning a tuple or dict works through its own loss_fn.
    name: the run's name on the page. layers: module paths to probe (default: every module with a weight:
        Linear, Conv1d/2d/3d, RNN/LSTM/GRU, Embedding; `norms=True` adds affine normalisation layers).
    Snapshots: every `every` steps if given; else with `total_steps` the engine's schedule (step 0, ~20
    geometric steps, the last); else steps 0, 1, 2, 4, ..., 256, then every 256. The end of the block is
    always probed. Leaving the block marks the run complete, "diverged" after a NaN/inf loss, or "stopped"
    when an exception leaves it (the exception is raised on)."""

    def __init__(
        self,
        model: nn.Module,
        probe: tuple[torch.Tensor, torch.Tensor],
        loss_fn: LossFn | None = None,
        name: str = "my-net",
        every: int | None = None,
        layers: Sequence[str] | None = None,
        norms: bool = False,
        total_steps: int | None = None,
    ):
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise ValueError("watch: name must be 1 to 100 characters")
        for label, value in (("every", every), ("total_steps", total_steps)):
            if value is not None and (not isinstance(value, int) or value < (1 if label == "every" else 0)):
                raise ValueError(f"watch: {label} must be a {'positive' if label == 'every' else 'non-negative'} int")
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        self.model, self.loss_fn = model, loss_fn or nn.functional.cross_entropy
        self.x, self.y = (part.to(device) if isinstance(part, torch.Tensor) else part for part in probe)
        self.every, self.total_steps = every, total_steps
        self.schedule = set(snapshot_schedule(total_steps, 1)) if total_steps is not None and every is None else None
        self.layers = _chosen(find_layers(model, norms), layers)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:60].strip("-") or "run"
        self.meta = {
            "source": "watch",
            "name": name,
            "key": f"watch-{slug}-{uuid.uuid4().hex[:8]}",
            "layers": [layer.name for layer in self.layers],
            "status": "running",
            "diverged_at_step": None,
            "total_steps": None,
            "device": str(device),
            "torch": torch.__version__,
            "model": type(model).__name__,
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "timings": {"probe_s": 0.0},
        }
        self.activation = activation_bins(self.layers)
        self.recorder = Recorder(None, self.meta, activation=self.activation)
        self.log = StepRecorder(model, self.layers, self.recorder, device, total_steps)
        self.before: list[torch.Tensor] | None = None  # the weights before the coming optimizer step
        self.probed: set[int] = set()
        self.started: float | None = None

    def due(self, step: int) -> bool:
        """Whether `step` (optimizer steps taken) is a snapshot step."""
        if self.every is not None:
            return step % self.every == 0
        if self.schedule is not None:
            return step in self.schedule
        return step % OPEN_EVERY == 0 or (step & (step - 1)) == 0

    def step(self, loss: torch.Tensor) -> None:
        """Call once per training step, after loss.backward() and before optimizer.step()."""
        if self.started is None:
            raise RuntimeError("watch: call step() inside `with watch(...) as w:`")
        taken = self.log.step  # optimizer steps so far: the weights the probe sees
        if self.due(taken):
            self._probe(taken)
        self.log.record(loss if isinstance(loss, torch.Tensor) else torch.tensor(float(loss)))
        self.before = self.log.weights_copy() if self.due(taken + 1) else None

    @property
    def result(self) -> RunResult:
        """Everything recorded so far (meta["status"] is "running" inside the block)."""
        return self.recorder.result()

    def __enter__(self) -> Watch:
        self.started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        taken = self.log.step
        if kind is None:
            if taken not in self.probed:  # the end of training is always probed
                self._probe(taken)
            diverged = self.log.first_diverged(taken)
            self.meta["diverged_at_step"] = diverged
            self.meta["status"] = "diverged" if diverged else "complete"
        else:
            self.meta["status"] = "stopped"
        self.log.sync(taken)
        self.meta["total_steps"] = taken
        self.meta["timings"]["total_s"] = time.perf_counter() - (self.started or time.perf_counter())
        return False  # an exception inside the block is raised on

    def _probe(self, step: int) -> None:
        started = time.perf_counter()
        self.log.snapshot(step, self.x, self.y, self.activation, self.before, self.loss_fn)
        self.probed.add(step)
        self.meta["timings"]["probe_s"] += time.perf_counter() - started


watch = Watch  # the recipe's name: `with watch(model, probe=...) as w:`


def activation_bins(layers: Sequence[Layer]) -> str:
    """The activation histogram's bins for these layers: their activation's when they share one (a recurrent
    module's output: its non-linearity), else 'linear' (-5..5)."""
    names = set()
    for layer in layers:
        if layer.output_is_activation:
            names.add(getattr(layer.module, "nonlinearity", "tanh"))
        elif layer.activation is not None:
            names.add(ACTIVATION_NAMES.get(type(layer.activation), "linear"))
    return names.pop() if len(names) == 1 else "linear"


def _chosen(found: list[Layer], names: Sequence[str] | None) -> list[Layer]:
    if not found:
        raise ValueError("watch: the model has no module with a weight to probe")
    if names is None:
        return found
    by_name = {layer.name: layer for layer in found}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(f"watch: no layer {unknown[0]!r}; the model's layers: {', '.join(by_name)}")
    return [by_name[name] for name in names]
