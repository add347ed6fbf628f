"""The page's logic without Streamlit: widget state <-> comparison, result memory, texts, findings, sweeps,
and the throttle that paces what a training redraws.

app.py and vg_page keep the layout and the widgets; everything here is plain Python and tested on its own
(tests/test_pagestate.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from .cache import ResultCache, resolved
from .i18n import ENGLISH, N_, Message, Translator, message
from .presets import MAX_RUNS, OFF, PER_RUN_FIELDS, PRESETS, RUN_PARAM_SUFFIX, SHARED_FIELDS, Comparison
from .reproductions import Finding, Reproduction, find
from .results import RunResult, json_safe
from .spec import RECURRENT, RunSpec, SpecError
from .summary import nearest_step as nearest_step  # the page's step scrubber uses the verdicts' rule
from .summary import verdicts
from .sweep import MAX_POINTS, SWEEP_COLUMNS, Sweep, cached_table, parse_depths
from .train import Progress

LEVEL_ICON = {"ok": ":green[✔]", "info": ":gray[•]", "warning": ":orange[⚠]", "error": ":red[✖]"}
DEFAULT_DEPTHS = (2, 5, 10, 20)  # the depth sweep of a preset that names none
DATASET_LABELS = {
    "mnist": N_("MNIST (60,000 digits; downloaded once)"),
    "fashion-mnist": N_("Fashion-MNIST (60,000 images)"),
    "mnist-sample": N_("mnist-sample (4,000 digits, offline)"),
}


def available_devices() -> tuple[str, ...]:
    """The devices this machine can train on, for the device picker."""
    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if torch.backends.mps.is_available():
        found.append("mps")
    return tuple(found)


def release_memory() -> None:
    """Hand freed heap back to the OS after a training (glibc keeps it otherwise: ~100-200 MB a run)."""
    gc.collect()
    trim_heap()


def trim_heap() -> None:
    with contextlib.suppress(OSError, AttributeError):  # glibc only; elsewhere a no-op
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# ---------------------------------------------------------------- results kept in memory


_MISSING = object()  # what Memo.find gives for a key it does not hold, where None may be a value


class Memo:
    """The last `size` values by key (least recently used dropped first), shared by all visitors: charts and
    texts a rerun would build again unchanged, and results read from the disk."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()

    def find(self, key: Hashable, default: Any = None) -> Any:
        with self.lock:
            if key not in self.items:
                return default
            self.items.move_to_end(key)
            return self.items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The value kept for `key`, else `build()`'s, kept."""
        value = self.find(key, _MISSING)
        if value is _MISSING:
            value = build()
            self.put(key, value)
        return value


class ResultMemory:
    """The last few results in memory, shared by all visitors (a Memo of `size` results), read through to `disk`."""

    def __init__(self, disk: ResultCache, size: int) -> None:
        self.disk, self.memo = disk, Memo(size)

    def get(self, spec: RunSpec) -> RunResult | None:
        spec = resolved(spec)
        found = self.memo.find(spec.key())
        if found is None:
            found = self.disk.get(spec)
            if found is not None:
                self.put(found)
        return found

    def put(self, result: RunResult) -> None:
        self.memo.put(result.spec.key(), result)


@dataclass
class Throttle:
    """Something done at most every `every` seconds while training (a redraw, a progress report), the first time at
    once; told what a go took (`done`), also never more than `share` of the time (default a third): a slow machine
    then does it less often rather than training slower."""

    every: float
    share: float = 1 / 3
    at: float | None = None  # when it was last done (time.monotonic)
    took: float = 0.0

    def due(self, now: float) -> bool:
        return self.at is None or now - self.at >= max(self.every, self.took * (1 / self.share - 1))

    def done(self, started: float, now: float | None = None) -> None:
        """A go begun at `started` has ended `now` (default: the clock now)."""
        self.at = time.monotonic() if now is None else now
        self.took = self.at - started


def results_key(runs: Sequence[tuple[str, RunResult]]) -> tuple:
    """What tells the results drawn apart, for a Memo: each run's name, key, rows recorded so far, its last
    snapshot's step (a live one is not recorded: the same rows may come with another) and status."""
    return tuple(
        (
            name,
            result.key,
            len(result.steps),
            len(result.layer_stats),
            tuple(result.snapshot_steps[-1:]),
            result.meta.get("status"),
        )
        for name, result in runs
    )


# ---------------------------------------------------------------- sidebar widgets <-> comparison


def widget_values(comparison: Comparison) -> dict[str, object]:
    """Session-state values (keys w_*) that make the sidebar show `comparison`."""
    first = comparison.specs[0]
    # The preset picker names the preset while the runs are its own; a comparison of other runs is not it.
    values: dict[str, object] = {"w_preset": comparison.preset if comparison.runs_match_preset else None}
    values.update({f"w_{name}": getattr(first, name) for name in SHARED_FIELDS})
    for index in range(1, MAX_RUNS + 1):
        spec = comparison.specs[index - 1] if index <= len(comparison.specs) else None
        source = spec or first
        values.update({f"w_run{index}_{name}": getattr(source, name) for name in PER_RUN_FIELDS})
        if spec is None:
            values[f"w_run{index}_activation"] = OFF
    return values


def widget_params(state: Mapping[str, Any], preset: str) -> dict[str, Any]:
    """The URL parameters the sidebar's widget values (keys w_*) stand for, over `preset` (the one the
    comparison started from); inverse of widget_values."""
    params: dict[str, Any] = {"preset": preset, **{name: state[f"w_{name}"] for name in SHARED_FIELDS}}
    for index in range(1, MAX_RUNS + 1):
        if state[f"w_run{index}_activation"] == OFF:
            params[f"run{index}"] = OFF
            continue
        params[f"run{index}"] = state[f"w_run{index}_activation"]
        params[f"run{index}_init"] = state[f"w_run{index}_init"]
        if state[f"w_run{index}_init"] == "normal":
            params[f"run{index}_std"] = state[f"w_run{index}_init_std"]
        params.update(_family_params(state, index))
    return params


def family_widgets(state: Mapping[str, Any], index: int) -> tuple[str, ...]:
    """The model-specific fields run `index`'s sidebar shows for the model picked there: seq_len, the
    recurrent init (its gain only with an orthogonal or identity one) and the forget bias (LSTM) for a
    recurrent net; normalisation and skips otherwise. Widgets not shown keep no value (widget_field)."""
    model = widget_field(state, index, "model")
    if model not in RECURRENT:
        return ("norm", "residual")
    shown = ("seq_len", "recurrent_init")
    if widget_field(state, index, "recurrent_init") != "default":
        shown += ("recurrent_gain",)
    return (*shown, "forget_bias") if model == "lstm" else shown


def widget_field(state: Mapping[str, Any], index: int, name: str) -> Any:
    """Run `index`'s widget value of field `name`, or RunSpec's default for a widget not shown (Streamlit
    forgets the value of a widget that a rerun does not draw)."""
    return state.get(f"w_run{index}_{name}", getattr(RunSpec, name))


def _family_params(state: Mapping[str, Any], index: int) -> dict[str, Any]:
    """URL parameters of run `index`'s model, clipping and model-specific fields: a field the model has but
    the sidebar does not show is written as its neutral default, so that no preset value of it is kept."""
    model = widget_field(state, index, "model")
    params = {f"run{index}_model": model, f"run{index}_clip": widget_field(state, index, "clip_norm")}
    shown = family_widgets(state, index)
    names = ("seq_len", "recurrent_init", "recurrent_gain", "forget_bias") if model in RECURRENT else ()
    for name in ("norm", "residual", *names):
        value = widget_field(state, index, name) if name in shown else getattr(RunSpec, name)
        params[f"run{index}_{RUN_PARAM_SUFFIX[name]}"] = value
    return params


# ---------------------------------------------------------------- how the page is viewed: step and gradients

GRAD_PARAMS = {"weights": "weight_grad", "backprop": "grad_out"}  # ?grad=... <-> the gradients shown


@dataclass(frozen=True)
class View:
    """How the comparison is viewed, kept in the URL beside it: the training step and the gradient kind."""

    step: int | None = None  # the training step scrubbed to; None: each run's last snapshot
    grad_kind: str = "weight_grad"  # weight_grad (∂L/∂W) or grad_out (∂L/∂z)

    def to_params(self) -> dict[str, str]:
        """?grad=weights|backprop and, when one is chosen, ?step=N."""
        params = {"grad": next(key for key, kind in GRAD_PARAMS.items() if kind == self.grad_kind)}
        if self.step is not None:
            params["step"] = str(self.step)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any], grad_kind: str) -> tuple[View, list[Message]]:
        """The view a URL asks for over `grad_kind` (the preset's), and a warning per bad value. Never raises."""
        warnings = []
        step = params.get("step")
        step = step[-1] if isinstance(step, (list, tuple)) and step else step
        if step is not None and not (str(step).isdigit() and len(str(step)) < 10):
            text = N_("step: {value} is not a training step (a whole number from 0); ignored.")
            warnings.append(message(text, value=str(step)[:60]))
            step = None
        grad = params.get("grad")
        grad = grad[-1] if isinstance(grad, (list, tuple)) and grad else grad
        if grad is not None and grad not in GRAD_PARAMS:
            text = N_("grad: {value} is not one of {choices}; ignored.")
            warnings.append(message(text, value=str(grad)[:60], choices=", ".join(GRAD_PARAMS)))
            grad = None
        kind = GRAD_PARAMS[grad] if grad is not None else grad_kind
        return cls(int(step) if step is not None else None, kind), warnings


# ---------------------------------------------------------------- exports


def export_stem(label: str) -> str:
    """A file-name stem from a run's label: 'sigmoid-5x128-default-init', 'relu-10x128-normal-sigma-0.01'."""
    text = label.lower().replace("σ", "sigma")
    return re.sub(r"[^a-z0-9.]+", "-", text).strip("-.")


def svg_name(view: str, step: int | None, grad_kind: str) -> str:
    """'flow-step-120-dW.svg': the view, the step (or 'last') and the gradients shown."""
    when = "last" if step is None else f"step-{step}"
    return f"{view}-{when}-{'dz' if grad_kind == 'grad_out' else 'dW'}.svg"


def csv_export(result: RunResult, frame: str) -> str:
    """One of a run's frames as CSV, its first line `# spec: {...}`: the full RunSpec as JSON, or a watched run's
    meta (read it back with pandas.read_csv(..., comment="#"))."""
    described = result.spec.to_dict() if result.spec is not None else {"watched": json_safe(result.meta)}
    header = "# spec: " + json.dumps(described, sort_keys=True) + "\n"
    return header + getattr(result, frame).to_csv(index=False)


# ---------------------------------------------------------------- texts


WORD_JOINER = "\u2060"  # invisible; splits what Streamlit would turn into a link, an icon or an emoji


def plain(text: str) -> str:
    """User-provided text as Markdown that shows exactly that text: one line (no headings or code blocks
    from newlines and indentation), every ASCII punctuation mark backslash-escaped (no emphasis, HTML, links,
    math), and an invisible word joiner after each ':', '@' and "www" (no autolinks, material icons or emoji
    shortcodes, which Streamlit finds in the text after escapes are undone)."""
    line = " ".join(str(text).split())
    escaped = re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", line)
    return re.sub(r"(\\[:@]|www)", r"\1" + WORD_JOINER, escaped, flags=re.IGNORECASE)


# The states a result's meta records (vg_core.runfiles), as the status line names them.
STATUS_WORDS = {
    "complete": N_("complete"),
    "running": N_("running"),
    "diverged": N_("diverged"),
    "stopped": N_("stopped"),
}


def status_line(result: RunResult, translate: Translator = ENGLISH) -> str:
    """'complete · mnist-sample 200 train / 1,000 test · cpu · trained in 1.2 s' in the page's language;
    a watched run: its own data."""
    meta = result.meta
    dataset = meta.get("dataset")
    if dataset:
        data = message(
            "{name} {n_train:,d} train / {n_test:,d} test",
            name=dataset["name"],
            n_train=int(dataset["n_train"]),
            n_test=int(dataset["n_test"]),
        )
    else:
        data = message("own data")
    seconds = meta.get("timings", {}).get("total_s")
    status = STATUS_WORDS.get(meta["status"], meta["status"])
    device = meta.get("device") or N_("device not recorded")
    parts = [translate.gettext(status), translate.render(data), translate.gettext(device)]
    if seconds is not None:
        parts.append(translate.render(message("trained in {seconds:.1f} s", seconds=float(seconds))))
    return " · ".join(parts)


def verdict_lines(
    result: RunResult, grad_kind: str = "weight_grad", step: int | None = None, translate: Translator = ENGLISH
) -> list[str]:
    """The run's verdicts about the gradients shown (`grad_kind`) at the page's `step` (None: the last snapshot),
    in the page's language, as Markdown lines with an icon each (the text escaped: a watched run names its layers)."""
    return [f"{LEVEL_ICON[v.level]} {plain(v.render(translate))}" for v in verdicts(result, grad_kind, step)]


# ---------------------------------------------------------------- paper reproductions


def reproduction_of(comparison: Comparison) -> Reproduction | None:
    """The paper reproduction the comparison is, or None (also when its runs' own settings were changed:
    then the claim's measurements no longer apply). Shared settings (width, epochs, ...) may differ."""
    slug = PRESETS[comparison.preset].reproduction if comparison.preset in PRESETS else ""
    if not slug or not comparison.runs_match_preset:
        return None
    return find(slug)


def run_findings(reproduction: Reproduction, results: Sequence[RunResult | None]) -> list[Finding] | Message:
    """The claim's findings from finished runs, or a sentence saying why there are none (yet)."""
    if reproduction.depths:
        return message("This reproduction is a depth sweep: its findings are in the Depth sweep section.")
    if any(result is None or result.meta.get("status") == "running" for result in results):
        return message("The findings appear when every run has finished training.")
    return _measured(lambda: reproduction.measure(list(results)))


def sweep_findings(reproduction: Reproduction, table: pd.DataFrame, missing: int) -> list[Finding] | Message:
    """The sweep claim's findings once every point is in the cache, or why there are none yet."""
    if missing:
        return message("The findings appear when all points are trained ({missing:d} still missing).", missing=missing)
    return _measured(lambda: reproduction.sweep_measure(table))


def _measured(measure: Any) -> list[Finding] | Message:
    try:
        return list(measure())
    except (ArithmeticError, LookupError, StopIteration, ValueError) as err:
        return message(
            "These settings give no measurement for the claim ({error}: {detail}).",
            error=type(err).__name__,
            detail=str(err),
        )


def claim_text(
    reproduction: Reproduction,
    comparison: Comparison,
    results: Sequence[RunResult | None],
    table: pd.DataFrame | None = None,
    missing: int = 0,
    translate: Translator = ENGLISH,
) -> str:
    """The reproduction's box: findings from its runs, or from the sweep `table` (None: the section is closed)."""
    if not reproduction.depths:
        findings, sweep = run_findings(reproduction, results), False
    elif table is None:
        findings, sweep = message("open the Depth sweep section to see them."), True
    else:
        findings, sweep = sweep_findings(reproduction, table, missing), True
    return reproduction_text(reproduction, comparison.changed_settings(translate), findings, sweep, translate)


def reproduction_text(
    reproduction: Reproduction,
    changed: Sequence[str],
    findings: list[Finding] | Message,
    sweep: bool = False,
    translate: Translator = ENGLISH,
) -> str:
    """The Markdown of a reproduction's box in `translate`'s language: the claim, what the runs (or the `sweep`'s
    points) show, how the setup differs (the reproduction's note and the `changed` settings)."""
    say = translate.render
    title, claim = translate.gettext(reproduction.title), translate.gettext(reproduction.claim)
    lines = [say(message("**{title}.** The paper's claim: {claim}", title=title, claim=claim)), ""]
    if isinstance(findings, Message):
        if sweep:
            lines.append(say(message("*What the sweep's points show:* {findings}", findings=findings)))
        else:
            lines.append(say(message("*What these runs show:* {findings}", findings=findings)))
    else:
        lines.append(
            translate.gettext(N_("**What the sweep's points show:**") if sweep else N_("**What these runs show:**"))
        )
        lines += [f"- {finding.render(translate)}" for finding in findings]
    lines.append("")
    notes = [translate.gettext(reproduction.note)] if reproduction.note else []
    if changed:
        notes.append(
            say(message("Changed here from the reproduction's settings: {changes}.", changes=", ".join(changed)))
        )
    if notes:
        lines.append(say(message("*How this setup differs:* {note}", note=" ".join(notes))))
    return "\n".join(lines)


# ---------------------------------------------------------------- depth sweep


def default_depths(comparison: Comparison) -> str:
    """The depths the sweep section starts with: the preset's, else DEFAULT_DEPTHS (plus the comparison's)."""
    preset = PRESETS.get(comparison.preset)
    depths = preset.depths if preset and preset.depths else (*DEFAULT_DEPTHS, comparison.specs[0].depth)
    return ", ".join(str(depth) for depth in sorted(set(depths)))


def comparison_sweeps(comparison: Comparison, text: str) -> list[Sweep]:
    """One sweep per run (its own settings kept, the depth varied) over the depths in `text`.

    Raises SpecError with a plain-words message for bad depths or a sweep too large or too costly."""
    depths = parse_depths(text)
    points = len(set(depths)) * len(comparison.specs)
    if points > MAX_POINTS:
        text = N_("{count:d} networks to train is more than the {limit:d} allowed: give fewer depths")
        raise SpecError(message(text, count=points, limit=MAX_POINTS))
    return [Sweep(spec, depths, (spec.activation,), (spec.init,)) for spec in comparison.specs]


def sweep_table(sweeps: Sequence[Sweep], names: Sequence[str], cache: ResultCache) -> tuple[pd.DataFrame, list]:
    """(the cached points of every run's sweep, with a `run` column; the specs still missing). Trains nothing."""
    tables, missing = [], []
    for sweep, name in zip(sweeps, names):
        table, absent = cached_table(sweep, cache)
        if len(table):
            tables.append(table.assign(run=name))
        missing += absent
    frame = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[*SWEEP_COLUMNS, "run"])
    return frame, missing


def sweep_progress(
    missing: Sequence[RunSpec],
    report: Callable[[float, str], None],
    every_s: float = 0.1,
    translate: Translator = ENGLISH,
) -> Callable[[int, int, RunSpec], Callable[[Progress], None] | None]:
    """run_sweep's on_point for the points in `missing`: each returns a training callback that reports
    (fraction of all the missing points done, a line of text), at most every `every_s` seconds."""
    keys = [resolved(spec).key() for spec in missing]
    started: list[str] = []

    def on_point(index: int, count: int, spec: RunSpec) -> Callable[[Progress], None] | None:
        key = resolved(spec).key()
        if key not in keys or key in started:
            return None  # cached: loads at once
        started.append(key)
        number, reports = len(started), Throttle(every_s, at=time.monotonic())
        label = translate.render(
            message("Point {number:d} of {count:d}: {label}", number=number, count=len(keys), label=spec.label)
        )
        report((number - 1) / len(keys), label)

        def callback(progress: Progress) -> None:
            now = time.monotonic()
            if reports.due(now) or progress.step == progress.total_steps:
                reports.done(now, now)
                fraction = (number - 1 + min(progress.fraction, 1.0)) / len(keys)
                text = N_("{label}, step {step:,d} of {total:,d}")
                report(
                    fraction,
                    translate.render(message(text, label=label, step=progress.step, total=progress.total_steps)),
                )

        return callback

    return on_point
