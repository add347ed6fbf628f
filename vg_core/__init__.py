"""vg_core: train instrumented MLPs, CNNs and RNNs and record layer-wise gradient and activation distributions.

The flow, one module each: spec -> data -> model -> probes -> train -> results -> cache -> summary -> charts,
with cli.py (and commands.py) on top, and watcher.py for the user's own model and loop (`vg_core.watch`).
Nothing here imports streamlit.
"""

import importlib
from typing import Any

_PUBLIC = {"ARTICLE_SPEC": "spec", "RunSpec": "spec", "SpecError": "spec", "watch": "watcher"}  # name -> module
__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    """The public names, each imported at first use (PEP 562): `python -m vg_core --help` needs no torch, and
    `python -m vg_core.i18n` runs without the package having imported that module first."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'vg_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
