"""The validation table: rows computed from the engines, errors exact, failures shown not raised."""

from __future__ import annotations

import pytest

from dse.catalog import default_catalog
from dse.scenarios.registry import KINDS
from dse.validation import Check, kind_rows
from dse.validation.base import run_check

CATALOG = default_catalog()


def test_relative_error_and_tolerance_are_exact():
    """engine / published - 1, judged against the check's own tolerance (exact arithmetic)."""
    row = run_check("toy", Check("q", 200.0, "s", "src", lambda _: 230.0, tolerance_relative=0.15), CATALOG)
    assert row.relative_error == pytest.approx(0.15, rel=1e-12)
    assert row.within_tolerance is True and row.tolerance == "±15%"
    row = run_check("toy", Check("q", 200.0, "s", "src", lambda _: 231.0, tolerance_relative=0.15), CATALOG)
    assert row.within_tolerance is False


def test_ratio_band_is_one_sided():
    band = (0.5, 1.0)
    assert run_check("toy", Check("q", 3.5, "days", "s", lambda _: 2.0, ratio_band=band), CATALOG).within_tolerance
    assert not run_check("toy", Check("q", 3.5, "days", "s", lambda _: 3.6, ratio_band=band), CATALOG).within_tolerance


def test_a_failing_computation_becomes_the_rows_error():
    def broken(_):
        raise KeyError("no such preset")

    row = run_check("toy", Check("q", 1.0, "", "src", broken, tolerance_relative=0.1), CATALOG)
    assert row.engine is None and row.within_tolerance is None
    assert row.error is not None and "no such preset" in row.error


def test_a_kind_without_a_module_still_gets_its_references(toy_kind):
    assert kind_rows("toy", CATALOG) == []  # the toy cites nothing, and nothing breaks


@pytest.mark.parametrize("kind", ["inference", "rl_scaling", "pruning"])
def test_every_engine_check_computes(kind):
    """Each kind with published figures has rows, each with an engine number and a source."""
    if kind not in KINDS:
        pytest.skip(f"{kind} is not registered")
    rows = kind_rows(kind, CATALOG)
    assert rows
    for row in rows:
        assert row.error is None, row
        assert row.engine is not None and row.source


def test_references_that_echo_an_input_are_left_out():
    """Pruning cites the released checkpoints' K beside the scenario's K: context, not validation."""
    rows = kind_rows("pruning", CATALOG)
    assert not any(r.quantity.startswith("architecture codes (K)") for r in rows)
