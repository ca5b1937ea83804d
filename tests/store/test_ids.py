"""Content ids and canonical JSON (no database). The scheme is stated in docs/store.md; it is
tested exactly: SHA-256 of the canonical UTF-8 JSON of {schema_version, kind, inputs}, lowercase
unpadded base32, first 12 characters."""

from __future__ import annotations

import base64
import hashlib
import math
import re

import pytest
from tests.support.documents import make_document

from dse.store import InvalidDocument, StoreError, canonical_json, scenario_id_for


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_unicode() -> None:
    assert (
        canonical_json({"b": [1, 2.5, None], "a": {"d": True, "c": "é"}}) == '{"a":{"c":"é","d":true},"b":[1,2.5,null]}'
    )


def test_id_is_the_truncated_base32_sha256_of_the_canonical_content() -> None:
    document = make_document(name="anything", batch=8, model="llama2-7b")
    content = '{"inputs":{"batch":8,"model":"llama2-7b"},"kind":"inference","schema_version":1}'
    expected = base64.b32encode(hashlib.sha256(content.encode("utf-8")).digest()).decode().lower()[:12]
    assert scenario_id_for(document) == expected
    assert re.fullmatch(r"[a-z2-7]{12}", expected)


def test_same_content_same_id_whatever_the_key_order() -> None:
    one = {"schema_version": 1, "kind": "inference", "name": "x", "inputs": {"a": 1, "b": {"c": 2, "d": 3}}}
    other = {"inputs": {"b": {"d": 3, "c": 2}, "a": 1}, "name": "x", "kind": "inference", "schema_version": 1}
    assert scenario_id_for(one) == scenario_id_for(other)


def test_name_is_not_part_of_the_id() -> None:
    assert scenario_id_for(make_document(name="first")) == scenario_id_for(make_document(name="second"))


@pytest.mark.parametrize(
    "changed",
    [
        make_document(batch=33, model="gpt3-13b"),
        make_document(kind="training"),
        {**make_document(), "schema_version": 2},
        make_document(batch=32, model="gpt3-13b", extra=None),
    ],
    ids=["input value", "kind", "schema_version", "extra input"],
)
def test_any_content_change_changes_the_id(changed: dict[str, object]) -> None:
    assert scenario_id_for(changed) != scenario_id_for(make_document(batch=32, model="gpt3-13b"))


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([1, 2], ""),
        ({"schema_version": 1, "kind": "inference", "inputs": {}}, "name"),
        ({**make_document(), "owner": "me"}, "owner"),
        ({**make_document(), "schema_version": "1"}, "schema_version"),
        ({**make_document(), "schema_version": True}, "schema_version"),
        ({**make_document(), "kind": ""}, "kind"),
        ({**make_document(), "kind": "a b"}, "kind"),
        ({**make_document(), "name": 5}, "name"),
        ({**make_document(), "name": "nul\x00"}, "name"),
        ({**make_document(), "inputs": []}, "inputs"),
        (make_document(batch=math.nan), ""),
        (make_document(batch=math.inf), ""),
        (make_document(batch=object()), ""),
        (make_document(model="\ud800"), ""),
    ],
    ids=[
        "not an object",
        "missing name",
        "unknown field",
        "string version",
        "bool version",
        "empty kind",
        "kind with space",
        "name not a string",
        "NUL in name",
        "inputs not an object",
        "NaN",
        "infinity",
        "not JSON",
        "lone surrogate",
    ],
)
def test_malformed_documents_are_refused_naming_the_field(document: object, field: str) -> None:
    with pytest.raises(InvalidDocument) as raised:
        scenario_id_for(document)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert isinstance(raised.value, StoreError)
