"""The fast tier's exclusions in tests/conftest.py name tests that exist (a renamed test would
otherwise drop silently back into the fast tier)."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import SLOW_MODULES, SLOW_TESTS, TESTS


@pytest.mark.parametrize("name", sorted(SLOW_TESTS))
def test_each_slow_test_named_exists(name: str) -> None:
    module, function = name.split("::")
    imported = importlib.import_module("tests." + module.removesuffix(".py").replace("/", "."))
    assert callable(getattr(imported, function, None)), f"{name} is gone: update SLOW_TESTS in tests/conftest.py"


@pytest.mark.parametrize("module", sorted(SLOW_MODULES))
def test_each_slow_module_named_exists(module: str) -> None:
    assert (TESTS / module).is_file(), f"{module} is gone: update SLOW_MODULES in tests/conftest.py"
