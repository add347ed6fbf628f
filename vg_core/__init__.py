"""vg_core: train instrumented MLPs and record layer-wise gradient and activation distributions.

The flow, one module each: spec -> data -> model -> probes -> train -> results -> cache -> summary -> charts,
with cli.py on top, and watch.py for the user's own model and loop. Nothing here imports streamlit.
"""

from .spec import ARTICLE_SPEC, RunSpec, SpecError
from .watch import watch

__all__ = ["ARTICLE_SPEC", "RunSpec", "SpecError", "watch"]
