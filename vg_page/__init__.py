"""The page's Streamlit parts, which app.py calls in order (vg_core never imports streamlit)."""
