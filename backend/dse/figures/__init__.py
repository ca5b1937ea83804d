"""Results to Plotly figure dicts."""
