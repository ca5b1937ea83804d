"""Every kind's published-figure records (kinds/<kind>/published.py) hold within their stated tolerance.

These records are the one place a published figure lives: this test and the Validation page both read
them. A record with `known_miss` is a strict xfail carrying its reason.
"""

from __future__ import annotations

import pytest

from dse.catalog import default_catalog
from dse.scenarios.registry import KINDS

CATALOG = default_catalog()


def _cases() -> list[object]:
    cases: list[object] = []
    for kind_name, kind in KINDS.items():
        for figure in kind.published_figures():
            marks = [pytest.mark.xfail(strict=True, reason=figure.known_miss)] if figure.known_miss else []
            cases.append(pytest.param(figure, id=f"{kind_name}:{figure.key}", marks=marks))
    return cases


def test_record_keys_are_unique_within_a_kind():
    for kind_name, kind in KINDS.items():
        keys = [figure.key for figure in kind.published_figures()]
        assert len(keys) == len(set(keys)), kind_name


@pytest.mark.parametrize("figure", _cases())
def test_published_figure_within_tolerance(figure):
    comparison = figure.compare(CATALOG)
    assert figure.source and figure.unit is not None
    assert comparison.engine is not None, f"{figure.quantity}: the engine gave no finite number"
    assert comparison.within_tolerance, (
        f"{figure.quantity}: engine {comparison.engine:.6g} vs published {figure.published:.6g} {figure.unit} "
        f"({comparison.relative_error:+.2%}; tolerance {figure.tolerance.label}; {figure.source})"
    )
