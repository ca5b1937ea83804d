"""The Validation table (dse.services.validation): typed rows from the kinds' published-figure records,
errors exact, failures shown not raised, cold computation single-flight."""

from __future__ import annotations

import math
import re
import threading
import time
from typing import Any

import pytest

from dse.catalog import default_catalog
from dse.scenarios.base import PublishedFigure, Tolerance
from dse.scenarios.documents import document_model
from dse.scenarios.registry import KINDS, register
from dse.services.validation import (
    RecordingCatalog,
    ValidationRow,
    ValidationTable,
    kind_rows,
    record_row,
    validation_rows,
)
from tests.support.toy_kind import ToyKind

CATALOG = default_catalog()


def _figure(engine: Any, published: float = 200.0, tolerance: Tolerance | None = None, **extra: Any) -> PublishedFigure:
    return PublishedFigure(
        key="q",
        quantity="q",
        published=published,
        unit="s",
        source="src",
        tolerance=tolerance or Tolerance.within(0.15),
        engine=engine if callable(engine) else (lambda _: engine),
        **extra,
    )


def test_relative_error_and_tolerance_are_exact():
    """engine / published - 1, judged against the record's own tolerance."""
    row = record_row("toy", _figure(230.0), CATALOG)
    assert isinstance(row, ValidationRow) and row.kind == "toy" and row.key == "q"
    assert row.relative_error == pytest.approx(0.15, rel=1e-12)
    assert row.within_tolerance is True and row.tolerance_label == "±15%"
    assert row.tolerance == Tolerance.within(0.15) and row.role == "validation" and row.error is None
    assert record_row("toy", _figure(231.0), CATALOG).within_tolerance is False


def test_ratio_band_is_one_sided():
    band = Tolerance.band(0.5, 1.0)
    assert record_row("toy", _figure(2.0, published=3.5, tolerance=band), CATALOG).within_tolerance
    assert not record_row("toy", _figure(3.6, published=3.5, tolerance=band), CATALOG).within_tolerance
    assert record_row("toy", _figure(2.0, published=3.5, tolerance=band), CATALOG).tolerance_label == (
        "0.5 ≤ engine/published ≤ 1"
    )


def test_a_failing_computation_becomes_the_rows_error():
    def broken(_):
        raise KeyError("no such preset")

    row = record_row("toy", _figure(broken), CATALOG)
    assert row.engine is None and row.within_tolerance is None and row.relative_error is None
    assert row.error is not None and "no such preset" in row.error
    assert row.published == 200.0 and row.source == "src" and row.tolerance_label == "±15%"


def test_a_non_finite_engine_number_is_an_error():
    row = record_row("toy", _figure(math.nan), CATALOG)
    assert row.engine is None and row.error == "the engine returned a non-finite number"


def test_known_miss_is_carried_apart_from_the_note():
    row = record_row("toy", _figure(300.0, known_miss="no eager-mode overheads", note="fp32"), CATALOG)
    assert row.known_miss == "no eager-mode overheads" and row.note == "fp32"
    assert row.within_tolerance is False


def test_a_kind_without_records_has_no_rows(toy_kind):
    assert kind_rows("toy", CATALOG) == []  # the toy cites nothing, and nothing breaks


class _MovedKind(ToyKind):
    """A kind with one published-figure record."""

    kind = "moved_toy"
    engine_version = "moved-1"

    def published_figures(self) -> list[PublishedFigure]:
        return [_figure(210.0)]

    def examples(self) -> list[dict[str, Any]]:
        return [{"schema_version": 1, "kind": self.kind, "name": "moved", "inputs": {}}]


_MovedKind.__module__ = "dse.scenarios.kinds.moved_toy.kind"


@pytest.fixture
def moved_kind():
    kind = _MovedKind()
    register(kind)
    document_model.cache_clear()
    yield kind
    KINDS.pop(kind.kind, None)
    document_model.cache_clear()


def test_a_kinds_rows_are_its_records(moved_kind):
    rows = kind_rows("moved_toy", CATALOG)
    assert [(r.kind, r.key, r.within_tolerance) for r in rows] == [("moved_toy", "q", True)]


def test_records_that_cannot_be_listed_become_an_error_row(moved_kind, monkeypatch):
    def broken(self):
        raise RuntimeError("bad published.py")

    monkeypatch.setattr(_MovedKind, "published_figures", broken)
    (row,) = kind_rows("moved_toy", CATALOG)
    assert row.error is not None and "bad published.py" in row.error


def test_cold_computation_is_single_flight():
    """Concurrent cold calls compute a kind's rows once; every caller gets that one answer."""
    calls: list[str] = []
    started = threading.Event()

    def slow(kind_name: str, catalog: Any) -> list[ValidationRow]:
        calls.append(kind_name)
        started.set()
        time.sleep(0.2)  # long enough for every other thread to arrive while this one computes
        return [ValidationRow(kind=kind_name, quantity="q", published=1.0, source="s")]

    table = ValidationTable(compute=slow)
    kind_name = next(iter(KINDS))
    answers: list[list[ValidationRow]] = []
    threads = [threading.Thread(target=lambda: answers.append(table.rows(kind_name, CATALOG))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert started.is_set() and calls == [kind_name]
    assert len(answers) == 8 and all(a is answers[0] for a in answers)
    assert table.rows(kind_name, CATALOG) is answers[0]  # warm: no computation
    assert calls == [kind_name]


def test_single_flight_is_per_kind_and_a_failure_is_retried():
    calls: list[str] = []

    def flaky(kind_name: str, catalog: Any) -> list[ValidationRow]:
        calls.append(kind_name)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return []

    table = ValidationTable(compute=flaky)
    first, second = list(KINDS)[:2]
    with pytest.raises(RuntimeError):
        table.rows(first, CATALOG)
    assert table.rows(first, CATALOG) == [] and table.rows(second, CATALOG) == []
    assert calls == [first, first, second]


def test_rows_installed_from_another_process_are_read_back_and_never_recomputed():
    """A server installs the rows its heavy worker computed at start (dse.api.cpu.warm_bands)."""
    calls: list[str] = []

    def compute(kind_name: str, catalog: Any) -> list[ValidationRow]:
        calls.append(kind_name)
        return []

    table = ValidationTable(compute=compute)
    first, second = list(KINDS)[:2]
    installed = [ValidationRow(kind=first, quantity="q", published=1.0, source="s")]
    assert table.cached(first, CATALOG) is None
    table.install(first, CATALOG, installed)
    assert table.cached(first, CATALOG) is installed and table.rows(first, CATALOG) is installed
    table.install(first, CATALOG, [])  # the rows it has stay
    assert table.rows(first, CATALOG) is installed
    assert table.rows(second, CATALOG) == [] and calls == [second]  # a kind not installed is computed
    assert table.cached(first, RecordingCatalog(CATALOG)) is None  # another catalog has rows of its own


def test_the_service_caches_per_process():
    assert validation_rows("rl_scaling", CATALOG) is validation_rows("rl_scaling", CATALOG)
    with pytest.raises(KeyError):
        validation_rows("nope", CATALOG)


@pytest.mark.parametrize("kind", ["inference", "rl_scaling", "pruning"])
def test_every_engine_check_computes(kind):
    """Each kind with published figures has rows, each with an engine number and a source."""
    if kind not in KINDS:
        pytest.skip(f"{kind} is not registered")
    rows = validation_rows(kind, CATALOG)
    assert rows
    for row in rows:
        assert row.error is None, row
        assert row.engine is not None and row.source and row.kind == kind


def test_references_that_echo_an_input_are_left_out():
    """Pruning cites the released checkpoints' K beside the scenario's K: context, not validation."""
    rows = validation_rows("pruning", CATALOG)
    assert not any(r.quantity.startswith("architecture codes (K)") for r in rows)
    assert all(r.role == "validation" for r in rows)


def test_a_known_miss_that_quotes_the_engine_quotes_its_current_number():
    """A reason opening "The engine gives X <unit>" (written by hand beside the record) states the row's engine
    value to the digits it gives, in the row's unit: an engine change that moves the number fails here, not
    silently in the README's list of misses."""
    quoted = 0
    for kind_name in KINDS:
        for row in validation_rows(kind_name, CATALOG):
            match = re.match(r"The engine gives ([0-9][0-9,]*(?:\.([0-9]+))?) ?(\S+?)[,:. ]", row.known_miss or "")
            if match is None or row.engine is None:
                continue
            quoted += 1
            value, decimals, unit = float(match.group(1).replace(",", "")), len(match.group(2) or ""), match.group(3)
            assert unit == row.unit, (row.key, unit, row.unit)
            assert value == round(row.engine, decimals), (row.key, value, row.engine)
    assert quoted >= 7  # the serving TTFT misses quote theirs


def test_tolerance_labels_are_written_to_readable_precision():
    """A tolerance derived from a printed figure's rounding read "±0.0147449%" or "0.997008 ≤ engine/published
    ≤ 1.00299"; its label keeps two significant digits of the distance from exact, the check the exact bound."""
    assert Tolerance.within(0.000147449).label == "±0.015%"
    assert Tolerance.within(0.125).label == "±12.5%"
    assert Tolerance.band(0.997008, 1.00299).label == "0.997 ≤ engine/published ≤ 1.003"
    assert Tolerance.band(0.5, 2.0).label == "0.5 ≤ engine/published ≤ 2"
    assert Tolerance.band(None, 2.0).label == "engine/published ≤ 2"
    assert Tolerance.band(0.997008, 1.00299).holds(0.9971, 1.0) is True
    assert Tolerance.band(0.997008, 1.00299).holds(0.9969, 1.0) is False
    # Every kind's published figures: no number in a tolerance label has more than four decimals.
    labels = {figure.tolerance.label for kind in KINDS.values() for figure in kind.published_figures()}
    too_precise = [label for label in labels if re.search(r"\.\d{5}", label)]
    assert not too_precise, too_precise
