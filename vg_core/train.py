"""Training: the spec's network on its dataset, probed at snapshot steps, reporting to a callback."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from . import data as datasets
from .models import build_model
from .probes import model_layers
from .probes.through_time import flushed_denormals, probe_through_time
from .recording import StepRecorder
from .results import Recorder, RunResult
from .spec import RECURRENT, RunSpec, SpecError

EARLY_SNAPSHOTS = 20  # geometrically spaced snapshots inside the first epoch
EVAL_CHUNK = 2000  # samples per forward pass when evaluating
INIT_TRAIN_EVAL = 10_000  # training samples the step-0 training loss is measured on
# A run has diverged when its loss is NaN or infinite, or above DIVERGED_LOSS_FACTOR x its starting value
# (the step-0 training loss, or chance level ln(classes) if that is lower): a batch loss at any step, or the
# test loss at an epoch's end.
DIVERGED_LOSS_FACTOR = 10.0


@dataclass(frozen=True)
class Progress:
    """What a callback is told after a training step: where we are, and at snapshots the result so far."""

    step: int
    total_steps: int
    epoch: float
    # At snapshot steps only: builds the result so far. Building it makes frames of every row recorded yet, so a
    # callback calls it only when it will use it, and within the call (later it would hold later steps too).
    partial: Callable[[], RunResult] | None = None
    # Between snapshots: builds the result so far with a probe of the model at this step that is shown and not
    # recorded (a probe pass: call it at most every few seconds, within the call).
    live: Callable[[], RunResult] | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.total_steps == 0 else self.step / self.total_steps


# Return True from the callback to stop the run (its result then has status "stopped").
Callback = Callable[[Progress], bool | None]


def resolve_device(name: str) -> torch.device:
    """auto -> cuda, then mps, then cpu; an unavailable device is a SpecError that says so."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise SpecError(f"device: {name} is not available on this machine (use auto or cpu)")
    return torch.device(name)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Batches per epoch; the last, partial batch is kept, as in the article's DataLoader, except that a last
    batch of a single sample joins the one before (batch norm cannot train on one sample)."""
    return max(1, n_train // batch_size + (n_train % batch_size > 1))


def snapshot_schedule(per_epoch: int, epochs: int, early: int = EARLY_SNAPSHOTS) -> list[int]:
    """Step 0, ~`early` geometrically spaced steps in the first epoch, and every epoch's last step."""
    if epochs == 0:
        return [0]
    geometric = np.unique(np.geomspace(1, per_epoch, early).round().astype(int))
    ends = [per_epoch * (epoch + 1) for epoch in range(epochs)]
    return sorted({0, *geometric.tolist(), *ends})


ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, as the spec's "adam" means
ADAM_EPS = 1e-8


class Optimizer:
    """The spec's optimiser, SGD with momentum or Adam (torch.optim's defaults otherwise), without a
    torch.optim.Optimizer: constructing one imports torch._dynamo, the compiler (~1.5 s of CPU here, paid by
    every command-line run), for torch.compile's sake, which a run never uses. The update is torch.optim's
    own functional one (torch.optim.sgd.sgd, torch.optim.adam.adam) on the state torch.optim.SGD and Adam
    keep, so the numbers are theirs bit for bit (tests/test_train.py checks it), in their fused form
    (fused=True): one pass over each parameter, its gradient and its state, where the default loop makes three
    (the SGD update of the article's net: 3.4 against 5.3 ms a step on 2 CPU cores; it rounds differently)."""

    def __init__(self, spec: RunSpec, params) -> None:
        self.params = list(params)
        self.adam = spec.optimizer == "adam"
        self.lr, self.momentum = spec.lr, spec.momentum
        self.state: dict[int, dict[str, torch.Tensor]] = {}  # per parameter index, from its first step

    def zero_grad(self) -> None:
        """Drop the gradients, as torch.optim's zero_grad(set_to_none=True)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        live = [index for index, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[index] for index in live]
        grads = [p.grad for p in params]
        if self.adam:
            for index in live:
                if index not in self.state:  # torch.optim.Adam(fused=True)'s lazy state: a step count, zeros
                    p = self.params[index]
                    self.state[index] = {
                        "step": torch.zeros((), dtype=torch.float32, device=p.device),
                        "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                        "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                    }
            states = [self.state[index] for index in live]
            adam(
                params,
                grads,
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [],
                [state["step"] for state in states],
                has_complex=any(torch.is_complex(p) for p in params),
                amsgrad=False,
                beta1=ADAM_BETAS[0],
                beta2=ADAM_BETAS[1],
                lr=self.lr,
                weight_decay=0.0,
                eps=ADAM_EPS,
                maximize=False,
                fused=True,
            )
            return
        buffers = [self.state.get(index, {}).get("momentum_buffer") for index in live]
        sgd(
            params,
            grads,
            buffers,
            weight_decay=0.0,
            momentum=self.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            fused=True,
        )  # fills in the buffers of a first step
        if self.momentum != 0:
            self.state.update({index: {"momentum_buffer": buffer} for index, buffer in zip(live, buffers)})


def make_optimizer(spec: RunSpec, model: nn.Module) -> Optimizer:
    return Optimizer(spec, model.parameters())


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on (x, y), batch norm in inference mode."""
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    for start in range(0, len(x), EVAL_CHUNK):
        logits = model(x[start : start + EVAL_CHUNK])
        target = y[start : start + EVAL_CHUNK]
        loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(1) == target).sum()
    model.train()
    return float(loss_sum) / max(len(x), 1), float(correct) / max(len(x), 1)


def train(spec: RunSpec, callback: Callback | None = None, probes: bool = True) -> RunResult:
    """Train `spec` from scratch and return everything recorded; `probes=False` is for benchmarks only.

    A recurrent net trains with float32 denormals flushed to zero on this thread (set, then restored): its
    vanishing gradients pass through the denormal range at every time step, where CPU arithmetic is 2-4x
    slower, and values below 1.2e-38 lie far under every histogram's first bin. Other families train with
    the thread's own setting, so their numbers are exactly those of an unflushed run."""
    started = time.perf_counter()
    device = resolve_device(spec.device)
    data = datasets.load(spec.dataset, spec.n_train, spec.seed, spec.probe_size, device)
    model = build_model(spec, device)
    run = _Run(spec, model, data, device, callback, probes)
    run.meta["timings"]["setup_s"] = time.perf_counter() - started
    with flushed_denormals() if spec.model in RECURRENT else contextlib.nullcontext():
        run.loop()
    run.meta["timings"]["total_s"] = time.perf_counter() - started
    return run.recorder.result()


class _Run:
    """The state of one training run; `loop` is the whole of it."""

    def __init__(self, spec, model, data, device, callback, probes):
        self.spec, self.model, self.data, self.device = spec, model, data, device
        self.callback, self.probes = callback, probes
        self.optimizer = make_optimizer(spec, model)
        self.per_epoch = steps_per_epoch(len(data.x_train), spec.batch_size)
        self.total = self.per_epoch * spec.epochs
        self.schedule = set(snapshot_schedule(self.per_epoch, spec.epochs)) if probes else {0, self.total}
        # A device sync per step is free on the CPU but not on a GPU: check for NaN less often there.
        self.check_every = 1 if device.type == "cpu" else 25
        self.layers = model_layers(model)
        self.meta = {
            "key": spec.key(),
            "status": "running",
            "diverged_at_step": None,
            "dataset": {
                "name": data.name,
                "source": data.source,
                "notice": data.notice,
                "n_train": len(data.x_train),
                "n_test": len(data.x_test),
                "n_probe": len(data.x_probe),
            },
            "device": str(device),
            "torch": torch.__version__,
            "steps_per_epoch": self.per_epoch,
            "total_steps": self.total,
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "layers": [layer.name for layer in self.layers],
            "probes": probes,
            "timings": {"probe_s": 0.0, "eval_s": 0.0, "live_s": 0.0},  # live_s: probes shown, not kept
        }
        self.recorder = Recorder(spec, self.meta)
        # The per-step log; it adds meta["steps_per_point"]. Its loss_limit (DIVERGED_LOSS_FACTOR x the
        # starting loss) is set at step 0.
        self.log = StepRecorder(model, self.layers, self.recorder, device, self.total, self.per_epoch)

    def loop(self) -> None:
        model, data, spec = self.model, self.data, self.spec
        model.train()
        n_init = min(len(data.x_train), INIT_TRAIN_EVAL)
        self._evaluate(0, 0.0, evaluate(model, data.x_train[:n_init], data.y_train[:n_init]))
        start_loss = max(self.recorder.history[0][2], math.log(int(data.y_test.max()) + 1))
        if math.isfinite(start_loss):
            self.log.loss_limit = DIVERGED_LOSS_FACTOR * start_loss
        if self._snapshot(0, None):
            return self._finish("stopped")
        generator = torch.Generator().manual_seed(spec.seed)
        step = 0
        for epoch in range(spec.epochs):
            order = torch.randperm(len(data.x_train), generator=generator).to(self.device)
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device)
            for batch in range(self.per_epoch):
                start = batch * spec.batch_size
                index = order[start : len(order) if batch == self.per_epoch - 1 else start + spec.batch_size]
                x, y = data.x_train[index], data.y_train[index]
                self.optimizer.zero_grad()
                logits = model(x)
                loss = nn.functional.cross_entropy(logits, y)
                loss.backward()
                step += 1
                # Recorded before clipping: the gradient the network produced, not the step taken.
                self.log.record(loss)
                with torch.no_grad():
                    loss_sum += loss.detach() * len(index)
                    correct += (logits.argmax(1) == y).sum()
                if spec.clip_norm > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), spec.clip_norm)
                before = self.log.weights_copy() if step in self.schedule else None
                self.optimizer.step()
                if step in self.schedule or step % self.check_every == 0:
                    diverged = self.log.first_diverged(step)
                    if diverged is not None:
                        self.meta["diverged_at_step"] = diverged
                        self._snapshot(diverged, None)
                        return self._finish("diverged")
                if step == (epoch + 1) * self.per_epoch:
                    train_stats = (float(loss_sum) / len(order), float(correct) / len(order))
                    self._evaluate(step, epoch + 1.0, train_stats)
                    test_loss = self.recorder.history[-1][4]
                    if not math.isfinite(test_loss) or test_loss > self.log.loss_limit:  # the last update blew up
                        self.meta["diverged_at_step"] = step
                        self._snapshot(step, before)
                        return self._finish("diverged")
                if step in self.schedule:
                    if self._snapshot(step, before):
                        return self._finish("stopped")
                elif self.callback and self.callback(
                    Progress(step, self.total, step / self.per_epoch, live=functools.partial(self._live, step))
                ):
                    return self._finish("stopped")
        self._finish("complete")

    def _evaluate(self, step: int, epoch: float, train_stats: tuple[float, float]) -> None:
        started = time.perf_counter()
        test_stats = evaluate(self.model, self.data.x_test, self.data.y_test)
        self.recorder.add_evaluation(step, epoch, train_stats, test_stats)
        self.meta["timings"]["eval_s"] += time.perf_counter() - started

    def _snapshot(self, step: int, before: list[torch.Tensor] | None) -> bool:
        """Sync per-step scalars, probe at `step`, tell the callback; True if it asks to stop."""
        started = time.perf_counter()
        self.log.snapshot(step, self.data.x_probe, self.data.y_probe, self.spec.activation, before)
        self._through_time(self.recorder, step)
        self.meta["timings"]["probe_s"] += time.perf_counter() - started
        if self.callback is None:
            return False
        return bool(self.callback(Progress(step, self.total, step / max(self.per_epoch, 1), self.recorder.result)))

    def _live(self, step: int) -> RunResult:
        """The result so far with a probe of the model at `step`, not recorded (StepRecorder.live)."""
        started = time.perf_counter()
        recorder = self.log.live(step, self.data.x_probe, self.data.y_probe, self.spec.activation)
        self._through_time(recorder, step)
        self.meta["timings"]["live_s"] += time.perf_counter() - started
        return recorder.result()

    def _through_time(self, recorder: Recorder, step: int) -> None:
        """A recurrent net's through-time probe at `step`, into `recorder`."""
        if self.spec.model in RECURRENT:
            recorder.add_time(step, probe_through_time(self.model, self.data.x_probe, self.data.y_probe))

    def _finish(self, status: str) -> None:
        if status != "stopped":
            self.log.sync(self.meta["diverged_at_step"] or self.total)
        self.meta["status"] = status
