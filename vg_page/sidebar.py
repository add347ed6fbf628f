"""The sidebar: the language, the preset, and every setting of the comparison in a form sent with Apply."""

from __future__ import annotations

import streamlit as st

from vg_core import pagestate as ps
from vg_core.i18n import N_, message
from vg_core.presets import MAX_RUNS, PRESETS, Comparison
from vg_core.spec import CHOICES, RANGES, SEQ_LENS, RunSpec
from vg_page import language, widgets, your_runs
from vg_page.language import _, say

RECURRENT_HELP = N_("The hidden-to-hidden matrix: PyTorch's default, orthogonal × gain, or identity × gain (IRNN, rnn)")


def show(comparison: Comparison, grad_kind: str | None = None) -> None:
    """Make `comparison` the applied one: sidebar, URL and the charts follow."""
    st.session_state.update(ps.widget_values(comparison))
    st.session_state["applied"] = comparison
    st.session_state["grad_kind"] = grad_kind or PRESETS[comparison.preset].grad_kind


def pick_preset() -> None:
    if st.session_state["w_preset"] is not None:
        show(Comparison.from_preset(st.session_state["w_preset"]))
    st.session_state.update(notices=[], form_error=None)


def apply_form() -> None:
    """Apply: the sidebar's values become the applied comparison, or an error says why not."""
    comparison, problems = from_widgets()
    if comparison is None:
        st.session_state["form_error"] = say(
            message("Not applied: {problems}", problems=ps.plain(" ".join(say(p) for p in problems)))
        )
    else:
        st.session_state.update(applied=comparison, notices=[], form_error=None)
        st.session_state["w_preset"] = ps.widget_values(comparison)["w_preset"]


def from_widgets() -> tuple[Comparison | None, list[str]]:
    params = ps.widget_params(st.session_state, st.session_state["applied"].preset)
    comparison, problems = Comparison.from_params(params, ps.available_devices())
    return (None, problems) if problems else (comparison, [])


def number(label: str, name: str, key: str, step: float | None = None, help: str | None = None) -> None:
    kind, low, high = RANGES[name]
    if kind is int:
        widgets.number_input(label, int(low), int(high), key, step=int(step or 1), help=help)
    else:
        widgets.number_input(label, float(low), float(high), key, step=step, format="%g", help=help)


def sidebar() -> None:
    """The preset picker, then the settings in a form with its Apply button at the top (always in reach):
    edits are sent only with Apply, in one rerun of the page, so nothing trains or stops while a value is
    changed, and Apply stops a training in progress at once."""
    with st.sidebar:
        language.picker()
        widgets.selectbox(
            _("Preset"),
            list(PRESETS),
            "w_preset",
            format_func={key: language.preset_title(key, language.tr()) for key in PRESETS}.get,
            on_change=pick_preset,
            placeholder=_("Your own comparison"),  # the page says how to start again from a preset
        )
        with st.form("settings", border=False):
            st.form_submit_button(
                _("Apply and train"), type="primary", width="stretch", on_click=apply_form, key="apply"
            )
            if st.session_state.get("form_error"):
                st.error(st.session_state["form_error"])
            settings()
        st.caption(_("The address bar holds these settings, the step and the gradients shown: copy it to share."))
    your_runs.sidebar_section()


def settings() -> None:
    """Every setting of the comparison (inside the sidebar's form: sent with Apply)."""
    st.markdown(_("**Shared by every run**"))
    widgets.selectbox(
        _("Dataset"),
        CHOICES["dataset"],
        "w_dataset",
        format_func={key: _(label) for key, label in ps.DATASET_LABELS.items()}.get,
    )
    left, right = st.columns(2)
    with left:
        number(_("Training samples"), "n_train", "w_n_train", 1000, _("0 = the whole training set"))
        number(_("Hidden layers"), "depth", "w_depth")
        number(_("Epochs"), "epochs", "w_epochs", help=language.glossary("epoch"))
        widgets.selectbox(_("Optimizer"), CHOICES["optimizer"], "w_optimizer")
        number(_("Momentum"), "momentum", "w_momentum", 0.05, _("SGD only"))
    with right:
        number(_("Units per layer"), "width", "w_width", 16)
        number(_("Batch size"), "batch_size", "w_batch_size", 16, help=language.glossary("batch"))
        number(_("Seed"), "seed", "w_seed")
        number(_("Learning rate"), "lr", "w_lr", 0.005)
        widgets.selectbox(_("Device"), ps.available_devices(), "w_device")
    for index in range(1, MAX_RUNS + 1):
        active = st.session_state.get(f"w_run{index}_activation", ps.OFF) != ps.OFF
        with st.expander(say(message("Run {index:d}", index=index)), expanded=active):
            options = CHOICES["activation"] if index == 1 else (ps.OFF, *CHOICES["activation"])
            widgets.selectbox(_("Activation"), options, f"w_run{index}_activation", help=language.glossary("sigma"))
            left, right = st.columns(2)
            init_help = language.glossary(*CHOICES["init"])
            widgets.selectbox(_("Init"), CHOICES["init"], f"w_run{index}_init", left, help=init_help)
            with right:
                number(_("σ (normal init)"), "init_std", f"w_run{index}_init_std", 0.01, language.glossary("normal"))
            model_settings(index)


def model_settings(index: int) -> None:
    """Run `index`'s model, clipping, and the fields its model has (pagestate.family_widgets)."""
    key = f"w_run{index}_{{}}".format
    left, right = st.columns(2)
    model_help = _("mlp, cnn, or a recurrent net (rnn, lstm, gru)")
    widgets.selectbox(_("Model"), CHOICES["model"], key("model"), left, help=model_help)
    with right:
        number(_("Clip gradient norm"), "clip_norm", key("clip_norm"), 0.5, _("The gradient's global norm; 0 = off"))
    shown = ps.family_widgets(st.session_state, index)
    for name in shown:  # a widget drawn again after being hidden starts from RunSpec's default
        st.session_state.setdefault(key(name), getattr(RunSpec, name))
    if "norm" in shown:  # full width: in half the sidebar both labels were cut ("Normalisatio n", "Resid...")
        widgets.selectbox(_("Normalisation"), CHOICES["norm"], key("norm"), help=language.glossary("batch norm"))
        widgets.checkbox(_("Residual skips"), key("residual"), help=language.glossary("skip"))
        return
    left, right = st.columns(2)
    steps_help = _("784 / steps pixels per step; 28 = a row each")
    widgets.selectbox(_("Time steps"), SEQ_LENS, key("seq_len"), left, help=steps_help)
    widgets.selectbox(
        _("Recurrent init"), CHOICES["recurrent_init"], key("recurrent_init"), right, help=_(RECURRENT_HELP)
    )
    left, right = st.columns(2)
    if "recurrent_gain" in shown:
        with left:
            number(_("Recurrent gain"), "recurrent_gain", key("recurrent_gain"), 0.1, _("Scales the recurrent matrix"))
    if "forget_bias" in shown:
        with right:
            number(_("Forget-gate bias"), "forget_bias", key("forget_bias"), 0.5, _("LSTM: b_f; > 0 keeps memory"))
