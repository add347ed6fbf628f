"""Named comparisons for the page: one shared RunSpec, a few per-run overrides, and what to look for.

A preset is data: `base` holds every shared setting, each entry of `runs` changes only the per-run
fields (PER_RUN_FIELDS: model, activation, init, residual, norm, clipping, the recurrent settings ...).
To add one, append a `Preset` to `PRESETS`; the
page, its URL state and its tests pick it up from there. The paper reproductions of
vg_core.reproductions become presets too (their key is the reproduction's slug), built from its
base spec and runs, never copied by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .budget import check as check_budget
from .budget import page_budget
from .i18n import ENGLISH, N_, Message, Translator, message
from .reproductions import REPRODUCTIONS, Reproduction
from .spec import ARTICLE_SPEC, RECURRENT, RunSpec, SpecError

# The settings every run of a comparison shares, and the ones each run may change.
SHARED_FIELDS = (
    "dataset",
    "n_train",
    "depth",
    "width",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "seed",
    "device",
)
PER_RUN_FIELDS = (
    "activation",
    "init",
    "init_std",
    "residual",
    "norm",
    "model",
    "seq_len",
    "clip_norm",
    "recurrent_init",
    "recurrent_gain",
    "forget_bias",
)
RECURRENT_ONLY = ("seq_len", "recurrent_init", "recurrent_gain", "forget_bias")  # in a URL for a recurrent run only
MAX_RUNS = 4

# Small and quick: 4,000 offline digits, 5 epochs of batch 32, one CPU thread: ~1-3 s a run.
QUICK = RunSpec(
    dataset="mnist-sample",
    n_train=0,
    depth=5,
    width=128,
    epochs=5,
    batch_size=32,
    lr=0.05,
    momentum=0.9,
)


@dataclass(frozen=True)
class Preset:
    """A named comparison: the shared spec, per-run overrides, and a caption for the page."""

    key: str  # its id in the URL (?preset=...)
    title: str  # what the picker shows
    caption: str  # one or two sentences: what the comparison shows
    base: RunSpec
    runs: tuple[Mapping[str, Any], ...] = field(default_factory=lambda: ({},))
    reproduction: str = ""  # the slug of the paper reproduction this preset is ("" for none)
    depths: tuple[int, ...] = ()  # a depth-sweep preset: the depths its sweep section starts with
    grad_kind: str = "weight_grad"  # the gradients the page shows first: weight_grad or grad_out

    def __post_init__(self) -> None:
        if not 1 <= len(self.runs) <= MAX_RUNS:
            raise ValueError(f"preset {self.key}: 1 to {MAX_RUNS} runs, not {len(self.runs)}")
        for run in self.runs:
            unknown = set(run) - set(PER_RUN_FIELDS)
            if unknown:
                raise ValueError(f"preset {self.key}: {sorted(unknown)} are not per-run fields")

    def specs(self) -> list[RunSpec]:
        """One validated RunSpec per run."""
        return [self.base.replace(**run) for run in self.runs]


PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset(
            key="activations",
            title=N_("Sigmoid vs ReLU vs Swish"),
            caption=N_(
                "The same 5-layer network three times, only the activation differs. Sigmoid's derivative is at "
                "most 1/4, so the gradient shrinks at every layer on its way back to fc1; ReLU and Swish pass it on."
            ),
            base=QUICK,
            runs=({"activation": "sigmoid"}, {"activation": "relu"}, {"activation": "swish"}),
        ),
        Preset(
            key="article",
            title=N_("The article's network"),
            caption=N_(
                "Exactly the seed article's DeepSigmoidNet: 784-1000x5-10 sigmoid, SGD 0.01 with momentum 0.9, "
                "batch 100, 10 epochs of MNIST. Slow on a CPU the first time; the cache keeps it afterwards."
            ),
            base=ARTICLE_SPEC,
            runs=({"activation": "sigmoid"},),
        ),
        Preset(
            key="init",
            title=N_("Initialisation matters (20-layer ReLU)"),
            caption=N_(
                "A 20-layer ReLU net with PyTorch's default init, Xavier and Kaiming. The default's weights are too "
                "small for ReLU: the signal and the gradient shrink layer by layer. Kaiming keeps their scale."
            ),
            base=QUICK.replace(activation="relu", depth=20, lr=0.01),
            runs=({"init": "default"}, {"init": "xavier_uniform"}, {"init": "kaiming_normal"}),
        ),
        Preset(
            key="rescue",
            title=N_("Rescuing a deep sigmoid net"),
            caption=N_(
                "A 10-layer sigmoid net as it is, with residual connections (x + f(x)) and with batch norm before "
                "each sigmoid. Skips give the gradient a path around each layer; batch norm keeps sigmoid unsaturated."
            ),
            # lr 0.005, not QUICK's 0.05: the skips' running sum x + f(x) grows with depth (each sigmoid adds up to
            # 1), and at 0.05 (or 0.02) the residual net's loss blows up within 3-7 steps; at 0.005 its largest
            # batch loss stays under half of the divergence bar (seeds 0-2) and it learns.
            base=QUICK.replace(activation="sigmoid", depth=10, lr=0.005),
            runs=({}, {"residual": True}, {"norm": "batch"}),
        ),
        Preset(
            key="cnn-residual",
            title=N_("Plain vs residual CNN"),
            caption=N_(
                "The same 9-layer ReLU conv net twice, with and without identity skips around each layer. In the "
                "plain net the gradient reaching conv1 is a small fraction of the last conv's; the skips carry it "
                "back almost undiminished (He et al. 2016)."
            ),
            base=QUICK.replace(activation="relu", depth=9, width=8, n_train=1000, epochs=1, lr=0.02, probe_size=128),
            runs=({"model": "cnn"}, {"model": "cnn", "residual": True}),
        ),
        Preset(
            key="rnn-vs-lstm",
            title=N_("RNN vs LSTM vs GRU"),
            caption=N_(
                "The digit read row by row, 28 steps, by a tanh RNN, an LSTM and a GRU of 64 units. The RNN's gradient "
                "shrinks with every step back in time; the gates give the LSTM and the GRU a path that keeps it, and "
                "they learn faster (Hochreiter & Schmidhuber 1997; Cho et al. 2014)."
            ),
            base=QUICK.replace(
                model="rnn", activation="tanh", depth=1, width=64, seq_len=28, epochs=2, optimizer="adam", lr=1e-3
            ),
            runs=({"model": "rnn"}, {"model": "lstm", "forget_bias": 1.0}, {"model": "gru"}),
        ),
        Preset(
            key="scale",
            title=N_("Too small, right, too large"),
            caption=N_(
                "A 10-layer ReLU net with normal(σ) weights at three scales. Too small and every signal dies out; "
                "about √(2/width) keeps it steady; too large and it explodes until the loss is no longer a number."
            ),
            base=QUICK.replace(activation="relu", depth=10, lr=0.01, init="normal"),
            runs=({"init_std": 0.01}, {"init_std": 0.1}, {"init_std": 1.0}),
        ),
    )
}
DEFAULT_PRESET = "activations"

# What the page shows first for a reproduction, beyond its runs (Glorot's figure 7 is of back-propagated gradients).
REPRODUCTION_VIEWS: dict[str, dict[str, Any]] = {"glorot-init": {"grad_kind": "grad_out"}}


def reproduction_preset(reproduction: Reproduction) -> Preset:
    """A paper reproduction as a page preset: its base spec and runs as they are, its claim as the caption."""
    return Preset(
        key=reproduction.slug,
        title=f"Paper: {reproduction.title}",
        caption=reproduction.claim[:1].upper() + reproduction.claim[1:],
        base=reproduction.base,
        runs=tuple(reproduction.runs),
        reproduction=reproduction.slug,
        depths=reproduction.depths,
        **REPRODUCTION_VIEWS.get(reproduction.slug, {}),
    )


PRESETS.update({reproduction.slug: reproduction_preset(reproduction) for reproduction in REPRODUCTIONS})


# ---------------------------------------------------------------- a comparison and its URL form

# URL names of the per-run fields: run1=<activation>, run1_init=..., run1_std=..., ...
RUN_PARAM_SUFFIX = {
    "init": "init",
    "init_std": "std",
    "residual": "residual",
    "norm": "norm",
    "model": "model",
    "clip_norm": "clip",
    "seq_len": "seq",
    "recurrent_init": "rinit",
    "recurrent_gain": "rgain",
    "forget_bias": "fbias",
}
OFF = "off"  # runN=off: the preset's run N is not shown (a link that names only some runs keeps the others)
VIEW_PARAMS = ("step", "grad", "lang", "tour")  # how the page is viewed, not what is compared: parsed by the page
MAX_PARAMS = 64  # a URL with more parameters than this is not one the page wrote
MAX_SHOWN = 60  # characters of a bad value quoted back in a warning
MAX_WARNINGS = 12  # warnings shown for one link; the rest are counted in the last one


@dataclass(frozen=True)
class Comparison:
    """What the page shows: 1 to MAX_RUNS specs sharing SHARED_FIELDS, and the preset they started from."""

    preset: str
    specs: tuple[RunSpec, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.specs) <= MAX_RUNS:
            raise ValueError(f"1 to {MAX_RUNS} runs, not {len(self.specs)}")
        first = self.specs[0]
        for spec in self.specs[1:]:
            for name in SHARED_FIELDS:
                if getattr(spec, name) != getattr(first, name):
                    raise ValueError(f"runs differ in the shared setting {name}")

    @classmethod
    def from_preset(cls, key: str) -> Comparison:
        return cls(key, tuple(PRESETS[key].specs()))

    @property
    def is_preset(self) -> bool:
        """True while the specs are exactly the preset's."""
        return self.preset in PRESETS and list(self.specs) == PRESETS[self.preset].specs()

    @property
    def runs_match_preset(self) -> bool:
        """True while each run's own settings (activation, init, ...) are the preset's, whatever the shared ones."""
        if self.preset not in PRESETS:
            return False
        theirs = PRESETS[self.preset].specs()
        return len(theirs) == len(self.specs) and all(
            getattr(mine, name) == getattr(other, name)
            for mine, other in zip(self.specs, theirs)
            for name in PER_RUN_FIELDS
        )

    def changed_settings(self, translate: Translator = ENGLISH) -> list[str]:
        """The shared settings that differ from the preset's, e.g. ['width 16 (preset: 1000)'] (URL names and
        values, in `translate`'s language)."""
        if self.preset not in PRESETS:
            return []
        mine, theirs = self.specs[0].to_params(), PRESETS[self.preset].base.to_params()
        return [
            translate.render(
                message("{name} {value} (preset: {preset})", name=name, value=mine[name], preset=theirs[name])
            )
            for name in SHARED_FIELDS
            if mine[name] != theirs[name]
        ]

    def key(self) -> str:
        """Stable id of what is compared (the specs' keys in order)."""
        return "-".join(spec.key() for spec in self.specs)

    def to_params(self) -> dict[str, str]:
        """The URL query parameters that restore this comparison exactly (see from_params); the preset's runs
        beyond this comparison's are written as runN=off."""
        shared = self.specs[0].to_params()
        params = {"preset": self.preset, **{name: shared[name] for name in SHARED_FIELDS}}
        for index, spec in enumerate(self.specs, 1):
            values = spec.to_params()
            params[f"run{index}"] = values["activation"]
            for name, suffix in RUN_PARAM_SUFFIX.items():
                if name == "init_std" and spec.init != "normal":
                    continue
                if name in RECURRENT_ONLY and spec.model not in RECURRENT:
                    continue
                params[f"run{index}_{suffix}"] = values[name]
        preset_runs = len(PRESETS[self.preset].runs) if self.preset in PRESETS else 0
        params.update({f"run{index}": OFF for index in range(len(self.specs) + 1, preset_runs + 1)})
        return params

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], devices: tuple[str, ...] = ("auto", "cpu")
    ) -> tuple[Comparison, list[Message]]:
        """Parse URL parameters leniently: (comparison, warnings). Never raises.

        Each of the preset's runs is kept unless the link changes it (runN, runN_init, ...) or turns it off
        (runN=off), so `?preset=rescue&run1=tanh` changes run 1 and keeps runs 2 and 3; runs beyond the preset's
        need runN=<activation>. A bad value is replaced by the preset's, with a warning naming the parameter and
        its allowed values; a combination the engine refuses (too large, too costly) falls back to the preset as
        a whole; unknown parameters are ignored with a warning (VIEW_PARAMS are left to the page).
        `devices` are those selectable on this machine.
        """
        warnings: list[Message] = []
        if len(params) > MAX_PARAMS:
            text = N_("the link has {count:d} parameters; only the first {limit:d} were read.")
            warnings.append(message(text, count=len(params), limit=MAX_PARAMS))
        params = {str(k)[:MAX_SHOWN]: _last(v) for k, v in list(params.items())[:MAX_PARAMS]}
        for name in VIEW_PARAMS:
            params.pop(name, None)
        preset_key = params.pop("preset", DEFAULT_PRESET)
        if preset_key not in PRESETS:
            text = N_("preset: {value} is not one of {choices}; using the default.")
            warnings.append(message(text, value=_shown(preset_key), choices=", ".join(PRESETS)))
            preset_key = DEFAULT_PRESET
        preset = PRESETS[preset_key]

        shared = {}
        for name in SHARED_FIELDS:
            if name in params:
                value = params.pop(name)
                if name == "device" and str(value).strip().lower() not in devices:
                    text = N_("device: {value} is not available here (use {choices}).")
                    warnings.append(message(text, value=_shown(value), choices=", ".join(devices)))
                    continue
                error = _field_error(name, value)
                if error:
                    warnings.append(error)
                else:
                    shared[name] = value

        runs: list[dict[str, Any]] = []
        given = set(params)
        present = []
        for index in range(1, MAX_RUNS + 1):
            named = str(params.get(f"run{index}", "")).strip().lower()
            if named == OFF and index > 1:
                params.pop(f"run{index}")
                for suffix in RUN_PARAM_SUFFIX.values():
                    params.pop(f"run{index}_{suffix}", None)
            elif named == OFF:
                params.pop(f"run{index}")
                text = N_("run1: run 1 cannot be {off} (only runs 2 to {last:d}); using the preset's.")
                warnings.append(message(text, off=OFF, last=MAX_RUNS))
                present.append(index)
            elif f"run{index}" in params or index <= len(preset.runs):
                present.append(index)
        for index in present:
            fallback = dict(preset.runs[index - 1]) if index <= len(preset.runs) else {}
            run: dict[str, Any] = {}
            for name, key in [("activation", f"run{index}")] + [
                (name, f"run{index}_{suffix}") for name, suffix in RUN_PARAM_SUFFIX.items()
            ]:
                if key not in params:
                    if name in fallback:
                        run[name] = fallback[name]
                    continue
                value = params.pop(key)
                error = _field_error(name, value, label=key)
                if error:
                    warnings.append(error)
                    if name in fallback:
                        run[name] = fallback[name]
                else:
                    run[name] = value
            if str(run.get("model", preset.base.model)).strip().lower() not in RECURRENT:
                # a non-recurrent run keeps no recurrent setting from the preset's run it replaced
                for name in RECURRENT_ONLY:
                    if name in run and f"run{index}_{RUN_PARAM_SUFFIX[name]}" not in given:
                        del run[name]
            if "init_std" in run and run.get("init", preset.base.init) != "normal":
                text = N_("run{index:d}_std: used only with init normal (run{index:d}_init=normal); ignored.")
                warnings.append(message(text, index=index))
            runs.append(run)
        for key in sorted(params):
            if any(key == f"run{i}" or key.startswith(f"run{i}_") for i in present):
                suffixes = ", ".join(RUN_PARAM_SUFFIX.values())
                text = N_("{key}: not a run setting (use {suffixes}); ignored.")
                warnings.append(message(text, key=_shown(key), suffixes=suffixes))
            else:
                warnings.append(message("{key}: not a setting of this page; ignored.", key=_shown(key)))

        try:
            base = preset.base.replace(**shared)
            comparison = cls(preset_key, tuple(base.replace(**run) for run in runs))
            check_budget(comparison.specs, page_budget())
        except (SpecError, ValueError) as err:
            reason = err.message if isinstance(err, SpecError) else _shown(str(err), 300)
            text = N_("{reason} — showing the preset '{title}' instead.")
            warnings.append(message(text, reason=reason, title=Message(preset.title)))
            comparison = cls.from_preset(preset_key)
        if len(warnings) > MAX_WARNINGS:
            more = message("and {count:d} more problems.", count=len(warnings) - MAX_WARNINGS + 1)
            warnings = [*warnings[: MAX_WARNINGS - 1], more]
        return comparison, warnings


# Validates one field on its own: every other field is the cheapest possible, so only this value can fail
# (a recurrent setting on the cheapest net that has it).
_CHEAP = RunSpec(dataset="mnist-sample", depth=1, width=1, epochs=0)
_CHEAP_FOR = {
    "model": _CHEAP.replace(activation="tanh"),  # the one activation every family takes
    "seq_len": _CHEAP.replace(model="rnn", activation="tanh"),
    "recurrent_init": _CHEAP.replace(model="rnn", activation="tanh"),
    "recurrent_gain": _CHEAP.replace(model="rnn", activation="tanh", recurrent_init="orthogonal"),
    "forget_bias": _CHEAP.replace(model="lstm"),
}


def _field_error(name: str, value: Any, label: str | None = None) -> Message | None:
    """Why `value` is no good for field `name`, under the URL parameter's name `label`; None when it is."""
    try:
        _CHEAP_FOR.get(name, _CHEAP).replace(**{name: value})
    except SpecError as err:
        params = dict(err.message.params)
        if isinstance(params.get("value"), str):  # a link's text, shortened; a number keeps its format
            params["value"] = _shown(params["value"])
        if label and "name" in params:
            params["name"] = label
        return Message(err.message.msgid, params, err.message.plural, err.message.n)
    except (TypeError, ValueError) as err:
        return message("{name}: {error}", name=label or name, error=_shown(str(err)))
    return None


def _last(value: Any) -> str:
    """A repeated URL parameter counts once, with its last value (as st.query_params does)."""
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value)


def _shown(text: Any, limit: int = MAX_SHOWN) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
