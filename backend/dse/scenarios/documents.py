"""Scenario documents: {schema_version, kind, name, inputs}, one typed schema per kind."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from dse.catalog import Catalog
from dse.scenarios.base import EvaluationResult, InputError, ScenarioKind
from dse.scenarios.registry import KINDS

SCHEMA_VERSION: Literal[1] = 1
NAME_FIELD = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$", description="A title for people; any text but NUL.")
]


class AnyDocument(BaseModel):
    """The envelope every document shares; `inputs` is checked against the kind's schema."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = SCHEMA_VERSION
    kind: str
    name: NAME_FIELD
    inputs: dict[str, Any]


@cache
def document_model(kind_name: str) -> type[BaseModel]:
    """The typed document model of one kind (its inputs schema inlined)."""
    kind = KINDS[kind_name]
    title = "".join(part.title() for part in kind_name.split("_")) + "Document"
    model: type[BaseModel] = create_model(
        title,
        __config__=ConfigDict(extra="forbid", title=title),
        schema_version=(Literal[1], SCHEMA_VERSION),
        kind=(Literal[kind_name], ...),  # type: ignore[arg-type]
        name=(NAME_FIELD, ...),
        inputs=(kind.inputs_model, ...),
    )
    return model


def document_union() -> Any:
    """A tagged union of every kind's document, for request bodies and OpenAPI."""
    models = [document_model(k) for k in KINDS]
    if not models:
        return AnyDocument
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007


def kind_of(document: BaseModel) -> ScenarioKind[Any, Any]:
    name = getattr(document, "kind", "")
    if name not in KINDS:
        raise InputError("kind", f"unknown kind '{name}'; known: {', '.join(KINDS)}")
    return KINDS[name]


def parse_document(raw: dict[str, Any]) -> BaseModel:
    """Validates a plain dict as a document of its kind (raises pydantic ValidationError / InputError)."""
    envelope = AnyDocument.model_validate(raw)
    if envelope.kind not in KINDS:
        raise InputError("kind", f"unknown kind '{envelope.kind}'; known: {', '.join(KINDS)}")
    return document_model(envelope.kind).model_validate(raw)


def document_json(document: BaseModel) -> dict[str, Any]:
    """The canonical plain form of a validated document (defaults filled in)."""
    data: dict[str, Any] = document.model_dump(mode="json")
    return data


def evaluate_document(document: BaseModel, catalog: Catalog) -> EvaluationResult:
    kind = kind_of(document)
    resolved = kind.resolve(document.inputs, catalog)  # type: ignore[attr-defined]
    return kind.evaluate(resolved)
