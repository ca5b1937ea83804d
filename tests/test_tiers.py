"""The fast tier's exclusions in tests/conftest.py name tests that exist (a renamed test would
otherwise drop silently back into the fast tier), and the modules it leaves unimported are exactly
those a `-m` expression leaves wholly out."""

from __future__ import annotations

import importlib
import re

import pytest

from tests.conftest import SLOW_MODULES, SLOW_TESTS, TESTS, in_slow_module, slow_tests_deselected

#: A module-level import of a fuzzer: Hypothesis or schemathesis.
FUZZER_IMPORT = re.compile(r"^(?:from|import) (?:hypothesis|schemathesis)\b", re.MULTILINE)


@pytest.mark.parametrize("name", sorted(SLOW_TESTS))
def test_each_slow_test_named_exists(name: str) -> None:
    module, function = name.split("::")
    imported = importlib.import_module("tests." + module.removesuffix(".py").replace("/", "."))
    assert callable(getattr(imported, function, None)), f"{name} is gone: update SLOW_TESTS in tests/conftest.py"


@pytest.mark.parametrize("module", sorted(SLOW_MODULES))
def test_each_slow_module_named_exists(module: str) -> None:
    assert (TESTS / module).exists(), f"{module} is gone: update SLOW_MODULES in tests/conftest.py"


@pytest.mark.parametrize(
    ("markexpr", "deselected"),
    [
        ("not slow", True),
        ("not browser and not postgres and not slow", True),  # the brief's command
        ("postgres and not slow", True),
        ("", False),
        ("slow", False),
        ("browser", False),  # browser tests are slow too: their modules must be collected
        ("not browser", False),
        ("not slow or browser", False),  # a slow browser test is selected
        ("not (slow and postgres)", False),
    ],
)
def test_slow_modules_are_left_unimported_only_when_no_slow_test_is_selected(markexpr: str, deselected: bool) -> None:
    assert slow_tests_deselected(markexpr) is deselected


def test_fast_tier_modules_import_no_fuzzer() -> None:
    """bin/test's fast tier turns the schemathesis and Hypothesis pytest plugins off (they import both
    packages in every process): a module outside SLOW_MODULES that imported one would run without them."""
    offenders = [
        path.relative_to(TESTS).as_posix()
        for path in sorted(TESTS.rglob("*.py"))
        if not in_slow_module(path.relative_to(TESTS).as_posix()) and FUZZER_IMPORT.search(path.read_text())
    ]
    assert offenders == [], "move the fuzzing tests of these modules to their own module listed in SLOW_MODULES"
