"""Former field names of the specs, still read so that saved documents and old preset files open.

Before issue 12 ("one meaning per word") several spec fields were called `kind`, a word now kept
for the scenario type alone. `FORMER_FIELD_NAMES` is the one place that maps each former name to
the current one. `install()` gives each renamed spec a pydantic hook, so wherever pydantic
validates the spec (a preset file here, an inline spec in any scenario's inputs, nested specs
too) the former name is read as the current one, and the JSON Schema accepts either name
(exactly one of them; the former one is marked deprecated). The specs themselves stay free of
pydantic; the values are unchanged, so a document evaluates to the same numbers under either name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from dse.specs.hardware import AcceleratorSpec
from dse.specs.llm import LLMSpec
from dse.specs.memory import MemorySpec
from dse.specs.network import InterconnectSpec
from dse.specs.workloads import DegreeSideSpec, PolicyLayerSpec

#: spec type -> {former field name: current field name}.
FORMER_FIELD_NAMES: dict[type, dict[str, str]] = {
    AcceleratorSpec: {"kind": "device_class"},
    MemorySpec: {"kind": "technology"},
    InterconnectSpec: {"kind": "technology"},
    PolicyLayerSpec: {"kind": "layer_type"},
    DegreeSideSpec: {"kind": "law"},
    LLMSpec: {"ffn_kind": "ffn_activation", "norm_kind": "norm_type"},
}


def current_names(spec_type: type, data: Any) -> Any:
    """`data` (the JSON object of one spec) with its former field names replaced by the current ones.

    Raises ValueError when a field is given under both names. Anything but a dict is returned as is.
    """
    renames = FORMER_FIELD_NAMES.get(spec_type)
    if not renames or not isinstance(data, Mapping):
        return data
    for former, current in renames.items():
        if former in data and current in data:
            raise ValueError(f"give '{current}' only ('{former}' is its former name)")
    return {renames.get(key, key): value for key, value in data.items()}


def _hooks(spec_type: type, renames: dict[str, str]) -> tuple[Any, Any]:
    def validate_with_former_names(cls: type, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        inner = dict(handler(source))
        # The renaming step takes over the definition's ref, so every other use of the spec
        # (a second field, a list, a nested spec) gets the renaming too, not the bare dataclass.
        ref = inner.pop("ref", None)
        return core_schema.no_info_before_validator_function(
            lambda data: current_names(spec_type, data),
            cast(core_schema.CoreSchema, inner),
            ref=ref,
        )

    def schema_with_former_names(
        cls: type, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        target = handler.resolve_ref_schema(json_schema)
        properties: dict[str, Any] = target.setdefault("properties", {})
        required: list[str] = target.setdefault("required", [])
        either: list[dict[str, Any]] = []
        for former, current in renames.items():
            if current not in properties or former in properties:  # a shared definition is patched once
                continue
            properties[former] = {
                **properties[current],
                "title": former,
                "deprecated": True,
                "description": f"Former name of '{current}' (read as '{current}'; give one of the two).",
            }
            if current in required:
                required.remove(current)
                either.append({"oneOf": [{"required": [current]}, {"required": [former]}]})
            else:
                either.append({"not": {"required": [current, former]}})
        if either:
            target.setdefault("allOf", []).extend(either)
        return json_schema

    return classmethod(validate_with_former_names), classmethod(schema_with_former_names)


def install() -> None:
    """Gives every renamed spec its pydantic hooks (idempotent; run when dse.catalog is imported)."""
    for spec_type, renames in FORMER_FIELD_NAMES.items():
        core_hook, json_hook = _hooks(spec_type, renames)
        setattr(spec_type, "__get_pydantic_core_schema__", core_hook)  # noqa: B010
        setattr(spec_type, "__get_pydantic_json_schema__", json_hook)  # noqa: B010
