"""Shared test setup: an app on a throwaway SQLite store, with the toy kind registered, and the
`slow` marker that splits the suite into two tiers.

Fast tier (the edit-test loop, under a minute on two cores): ``bin/test -m "not slow"``.
Full tier (CI, ``.ci/run``): plain ``bin/test``. `pytest_collection_modifyitems` below marks slow
every browser and PostgreSQL test, every property-based (Hypothesis) and schemathesis fuzzing test,
the crash, concurrency and load modules, and the few single tests listed in SLOW_TESTS.
When ``-m`` leaves out every slow test, `pytest_ignore_collect` does not even import the modules in
SLOW_MODULES (their imports and schemathesis's collection were over half of a worker's collection), and
this file imports the app only in the fixtures that make one (xdist's controller process loads it too).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: Whole modules (or folders) in the full tier: the browser, fuzzing through schemathesis and
#: Hypothesis, SIGKILL crash recovery, and the concurrency/load checks against a live server.
SLOW_MODULES = frozenset(
    {
        "browser",  # headless Chromium (each module is also marked `browser`)
        "reliability/test_schemathesis.py",
        "reliability/test_schema_extremes.py",  # Hypothesis over every numeric input's extremes
        "store/test_store_properties.py",  # Hypothesis: any JSON document round-trips
        "reliability/test_crash.py",
        "reliability/test_request_memory.py",  # the worst request of each kind in a capped interpreter
        "jobs/test_dask.py",  # a LocalCluster with two worker processes
        "reliability/test_concurrency.py",
        "reliability/test_bounded_server.py",  # live servers, raw sockets, timing
        "reliability/test_bounded_work.py",  # deadlines, pools and worst-case requests
        "reliability/test_access.py",  # hashes and headers over every page
        "reliability/test_bad_input.py",  # every example of every kind through the API
        "reliability/test_workers.py",  # `dse serve --workers 2`: two live server processes
    }
)
#: Single tests that take seconds each (measured on a 2-core machine) and whose ground the fast tier
#: covers more cheaply (every example also evaluates in scenarios/test_every_kind.py).
SLOW_TESTS = frozenset(
    {
        "test_cli.py::test_examples_then_evaluate_each",  # every example through the CLI, ~20 s
        "api/test_reports_and_validation_api.py::test_validation_endpoints",  # every kind's validation, ~10 s
        "api/test_documents_and_errors.py::test_schema_examples_and_openapi",  # every example over HTTP, ~8 s
        "store/test_database.py::test_processes_opening_a_fresh_database_at_once_migrate_it_once",  # 3 interpreters
        "store/test_database.py::test_an_unreachable_server_is_unavailable",  # a PostgreSQL connect timeout
        "test_docs.py::test_generated_blocks_match_the_engines",  # regenerates docs from every example
        "scenarios/test_every_kind.py::test_first_example_sweeps_in_one_call",  # a sweep per kind, searches included
        # Plan searches over HTTP or for every published plan, ~1-4 s each; the fast tier evaluates every
        # plan-search example in scenarios/test_every_kind.py.
        "scenarios/test_plan_search.py::test_search_endpoint_through_the_http_api",
        "scenarios/test_plan_search.py::test_why_table_explains_the_top_plan_by_its_neighbours",
        "engines/test_plan_search_validation.py::test_published_plan_fits_and_best_plan_is_at_least_as_fast",
        "api/test_deferred_studies.py::test_a_quick_answer_lists_what_it_left_out_and_is_small",  # every example
        "api/test_deferred_studies.py::test_include_all_is_the_whole_answer_that_saved_results_give",
        # Bands over a whole kind's published figures, ~1-2 s each (validation/test_bands.py keeps the rest).
        "validation/test_bands.py::test_a_validated_scenario_carries_its_groups_bands",
        "api/test_reports_and_validation_api.py::test_an_evaluation_carries_bands_and_says_when_it_is_outside_what_was_validated",
        # ~1-2.5 s each on the 2-core machine (2026-12-01: the fast tier had grown to 60 s wall); each one's ground is
        # covered more cheaply in the fast tier: deferred studies by test_include_adds_exactly_the_named_studies,
        # the summary's rows by the validation tests, the SSD question's search by test_every_kind, the
        # fitting-only shortcut by test_training_fitting_only's other tests.
        "api/test_deferred_studies.py::test_a_plan_search_defers_its_collapsed_tables_and_gives_them_when_asked",
        "api/test_reports_and_validation_api.py::test_validation_summary_endpoint",
        "scenarios/test_questions.py::test_q2_ssd_offload_never_does_worse_than_the_search_without_it",
        "engines/test_training_fitting_only.py::test_fitting_only_prices_exactly_the_plans_that_fit",
    }
)
FULL_TIER_MARKERS = ("browser", "postgres")


def in_slow_module(module: str) -> bool:
    """`module`, a path relative to tests/, is one of SLOW_MODULES or inside a folder listed there."""
    return any(module == slow or module.startswith(slow + "/") for slow in SLOW_MODULES)


def _is_slow(item: pytest.Item) -> bool:
    path = Path(str(item.path)).resolve()
    if not path.is_relative_to(TESTS):
        return False
    module = path.relative_to(TESTS).as_posix()
    function = getattr(item, "originalname", item.name)
    return (
        in_slow_module(module)
        or f"{module}::{function}" in SLOW_TESTS
        or any(item.get_closest_marker(name) for name in FULL_TIER_MARKERS)
        or getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_slow(item) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


#: The words of a `-m` expression that are not marker names (pytest's own grammar).
_MARK_EXPRESSION_KEYWORDS = frozenset({"and", "or", "not", "True", "False"})


def slow_tests_deselected(markexpr: str) -> bool:
    """Whether the `-m` expression leaves out every test marked slow, whatever other markers it
    carries: false for every set of the expression's marker names that holds `slow`."""
    if not markexpr:
        return False
    try:
        from _pytest.mark.expression import Expression  # pytest's own parser; private, hence the fallback

        expression = Expression.compile(markexpr)
    except Exception:  # an older or newer pytest, or a bad expression pytest itself will report
        return False
    others = sorted(set(re.findall(r"[\w:+\-.\[\]\\/]+", markexpr)) - _MARK_EXPRESSION_KEYWORDS - {"slow"})
    if len(others) > 8:
        return False
    subsets = (chosen for size in range(len(others) + 1) for chosen in itertools.combinations(others, size))
    marker_sets = ({"slow", *chosen} for chosen in subsets)
    return not any(expression.evaluate(_has_one_of(markers)) for markers in marker_sets)


def _has_one_of(markers: set[str]):
    return lambda name, /, **kwargs: name in markers


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Modules whose every test is slow are not imported at all when `-m` leaves slow tests out."""
    path = collection_path.resolve()
    if path == TESTS or not path.is_relative_to(TESTS) or not in_slow_module(path.relative_to(TESTS).as_posix()):
        return None
    return True if slow_tests_deselected(config.getoption("markexpr", "")) else None


@pytest.fixture
def toy_kind():
    from dse.scenarios.documents import document_model
    from dse.scenarios.registry import KINDS, register
    from tests.support.toy_kind import TOY

    register(TOY)
    document_model.cache_clear()
    yield TOY
    KINDS.pop(TOY.kind, None)
    document_model.cache_clear()


@pytest.fixture
def make_client(tmp_path):
    clients = []

    from fastapi.testclient import TestClient

    from dse.api.app import create_app
    from dse.settings import Settings

    def make(**settings_overrides):
        url = settings_overrides.pop("database_url", f"sqlite:///{tmp_path / 'store.sqlite3'}")
        app = create_app(Settings(database_url=url, **settings_overrides))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def toy_client(toy_kind, make_client):
    return make_client()
