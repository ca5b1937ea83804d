"""What the published inference figures say beyond each record (the records themselves, with their sources and
tolerances, live in dse/scenarios/kinds/inference/published.py and are checked by
tests/validation/test_published_figures.py)."""

from __future__ import annotations

from dse.catalog import default_catalog
from dse.scenarios.kinds.inference.published import BY_KEY


def test_early_vidur_h100_set_is_barely_faster_than_a100() -> None:
    """Why the early H100 points are not used to refit the preset: in the same vidur profiling family the H100
    Llama-2-13B 1-token linears are only ~1.14x faster than A100's although H100 SXM has 1.64x the bandwidth
    (3.35 vs 2.039 TB/s, datasheets); the engine's ratio follows the datasheets. Order check: the measured
    speed-up is below 1.2 and the engine's above 1.5 (published numbers read from the records)."""
    a100, h100 = BY_KEY["vidur-early-a100-llama2-13b-1tok-tp1"], BY_KEY["vidur-early-h100-llama2-13b-1tok-tp1"]
    catalog = default_catalog()
    assert a100.published / h100.published < 1.2
    assert a100.engine(catalog) / h100.engine(catalog) > 1.5
