"""The page benchmark's floor: a bare Streamlit page that imports what app.py imports at its heaviest (torch,
streamlit, altair) and draws one Altair chart. bench/page_bench.py starts it the same way as app.py."""

import altair as alt
import pandas as pd
import streamlit as st
import torch

st.title("Bare page")
frame = pd.DataFrame({"x": range(10), "y": torch.arange(10).pow(2).tolist()})
st.altair_chart(alt.Chart(frame).mark_line().encode(x="x", y="y"), width="stretch")
