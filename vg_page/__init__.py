"""Streamlit parts of the page that app.py calls (vg_core never imports streamlit)."""
