"""vg_core: train instrumented MLPs and record layer-wise gradient and activation distributions.

The flow, one module each: spec -> data -> model -> probes -> train -> results -> cache -> summary -> charts,
with cli.py on top. Nothing here imports streamlit.
"""

from .spec import ARTICLE_SPEC, RunSpec, SpecError

__all__ = ["ARTICLE_SPEC", "RunSpec", "SpecError"]
