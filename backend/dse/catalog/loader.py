"""Reads every preset file of models_db/ and validates it into its frozen spec."""

from __future__ import annotations

import dataclasses
import json
import os
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from dse.catalog.categories import CATEGORY_SPECS
from dse.catalog.former_names import FORMER_FIELD_NAMES, install

install()  # before any spec is validated: former field names are read as the current ones

T = TypeVar("T")

DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "models_db"


class CatalogError(Exception):
    """A preset file is malformed: names the file, the field and the reason."""

    def __init__(self, path: Path, field: str, reason: str) -> None:
        self.path, self.field, self.reason = path, field, reason
        super().__init__(f"{path}: field '{field}': {reason}")


class UnknownPreset(LookupError):
    """No preset with that id in that category."""

    def __init__(self, category: str, preset_id: str, known: list[str]) -> None:
        self.category, self.preset_id, self.known = category, preset_id, known
        super().__init__(f"unknown {category} preset '{preset_id}'; known: {', '.join(known)}")


@cache
def _adapter(spec_type: type) -> TypeAdapter[Any]:
    return TypeAdapter(spec_type)


class UnknownFieldError(ValueError):
    def __init__(self, field: str, known: list[str]) -> None:
        self.field = field
        super().__init__(f"unknown field; expected one of: {', '.join(known)}")


def validate_spec(spec_type: type[T], data: dict[str, Any]) -> T:
    """Validates a dict into a spec (presets and inline specs alike).

    Raises UnknownFieldError for a field the spec lacks, pydantic's ValidationError otherwise. A
    field's former name (dse.catalog.former_names) is read as its current name.
    """
    known = [f.name for f in dataclasses.fields(spec_type)]  # type: ignore[arg-type]
    former = FORMER_FIELD_NAMES.get(spec_type, {})
    for key in data:
        if key not in known and key not in former:
            raise UnknownFieldError(key, known)
    result: T = _adapter(cast(type, spec_type)).validate_python(data)
    return result


class Catalog:
    """All presets, by category and id, in file order of their ids."""

    def __init__(self, root: Path, presets: dict[str, dict[str, Any]]) -> None:
        self.root = root
        self._presets = presets

    @property
    def categories(self) -> list[str]:
        return list(self._presets)

    def ids(self, category: str) -> list[str]:
        return list(self._presets.get(category, {}))

    def items(self, category: str) -> list[Any]:
        return list(self._presets.get(category, {}).values())

    def get(self, category: str, preset_id: str) -> Any:
        try:
            return self._presets[category][preset_id]
        except KeyError:
            raise UnknownPreset(category, preset_id, self.ids(category)) from None

    def describe(self, category: str) -> list[dict[str, Any]]:
        """Presets as plain JSON-able dicts (every field, with its source)."""
        return [dataclasses.asdict(spec) for spec in self.items(category)]


def _load_file(path: Path, spec_type: type) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(path, "(file)", f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise CatalogError(path, "(file)", "a preset file must hold one JSON object")
    try:
        spec: Any = validate_spec(spec_type, data)
    except UnknownFieldError as exc:
        raise CatalogError(path, exc.field, str(exc)) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(file)"
        raise CatalogError(path, field, err["msg"]) from None
    if getattr(spec, "id", None) != path.stem:
        raise CatalogError(path, "id", f"must equal the file name '{path.stem}'")
    if not str(getattr(spec, "source", "")).strip():
        raise CatalogError(path, "source", "every preset must cite its source")
    return spec


def load_catalog(root: Path | None = None) -> Catalog:
    """Loads and validates every preset; a malformed file raises CatalogError naming it."""
    root = Path(root) if root else Path(os.environ.get("DSE_MODELS_DB", DEFAULT_ROOT))
    presets: dict[str, dict[str, Any]] = {}
    for category, spec_type in CATEGORY_SPECS.items():
        folder = root / category
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        presets[category] = {path.stem: _load_file(path, spec_type) for path in files}
    return Catalog(root, presets)


@cache
def default_catalog() -> Catalog:
    """The catalog of the configured models_db/, loaded once per process."""
    return load_catalog()
