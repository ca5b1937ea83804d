"""Scenario documents as the store sees them: shape check, canonical JSON and content ids.

A document is `{"schema_version", "kind", "name", "inputs"}`. Its *content* is everything but the
name (`schema_version`, `kind`, `inputs`); the content id hashes the content only, so renaming a
scenario never changes its id, and the first save of a content is saved under its content id. A later
save of the same content (someone else's, or under another name) is that saver's own named copy with
a random id of the same form, referencing the same content id (see dse.store.store).

The content id is the first `ID_LENGTH` characters of the lowercase, unpadded base32 encoding of the
SHA-256 of the content's canonical JSON: 12 characters carry 60 bits, so among a million saved
scenarios the chance of any two sharing an id is about 4e-7 (birthday bound n^2 / 2^61); the store
compares the stored content when a content id is taken and then saves under a random id instead of
mixing two scenarios.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from typing import Any

from dse.store.errors import InvalidDocument

ID_LENGTH = 12
# Lowercase RFC 4648 base32 alphabet: url-safe, no ambiguous case, no padding once truncated.
ID_PATTERN = re.compile(rf"[a-z2-7]{{{ID_LENGTH}}}")
DOCUMENT_KEYS = frozenset({"schema_version", "kind", "name", "inputs"})
CONTENT_KEYS = ("schema_version", "kind", "inputs")
KIND_MAX_LENGTH = 64
KIND_PATTERN = re.compile(rf"[A-Za-z0-9_.-]{{1,{KIND_MAX_LENGTH}}}")

# Free text in a saved document is bounded per field, so that one saved scenario cannot carry
# megabytes of prose: the name, and inside `inputs` (inline specs) ids, names, sources and notes.
NAME_MAX_LENGTH = 200  #: the document's name, and `name` anywhere in the inputs
ID_MAX_LENGTH = 128  #: `id` and `*_id` fields (preset ids)
SOURCE_MAX_LENGTH = 4000  #: `source`, `*_source`, `notes` and every value under `field_sources`
TEXT_MAX_LENGTH = 1000  #: any other string in the inputs (enumerations, preset names, ...)
KEY_MAX_LENGTH = 200  #: object keys in the inputs


def text_limit(path: tuple[str, ...]) -> int:
    """The longest string allowed at `path` (object keys only; list indices are left out)."""
    key = path[-1] if path else ""
    if "field_sources" in path[:-1] or key in ("source", "notes") or key.endswith(("_source", "_notes")):
        return SOURCE_MAX_LENGTH
    if key == "id" or key.endswith("_id"):
        return ID_MAX_LENGTH
    if key == "name" or key.endswith("_name"):
        return NAME_MAX_LENGTH
    return TEXT_MAX_LENGTH


def check_text_limits(value: Any, field: str = "inputs", keys: tuple[str, ...] = ()) -> None:
    """Raise `InvalidDocument` naming the first string (or key) in `value` over its field's limit."""
    if isinstance(value, str):
        limit = text_limit(keys)
        if len(value) > limit:
            raise InvalidDocument(field, f"at most {limit} characters (got {len(value)})")
    elif isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if len(name) > KEY_MAX_LENGTH:
                raise InvalidDocument(f"{field}.{name[:40]}…", f"a key has at most {KEY_MAX_LENGTH} characters")
            check_text_limits(item, f"{field}.{name}", (*keys, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_text_limits(item, f"{field}.{index}", keys)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, non-ASCII kept as is (hashed as UTF-8).

    NaN and infinities are refused (they are not JSON); so are values JSON cannot hold.
    Raises `InvalidDocument` naming the reason.
    """
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:  # unserialisable object, non-finite float, mixed key types
        raise InvalidDocument("", f"not representable as JSON: {exc}") from exc
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, which JSON input can carry as an escape
        raise InvalidDocument("", f"not representable as UTF-8: {exc.reason}") from exc
    return text


def storable_json(canonical: str) -> str:
    """The canonical JSON with NUL escaped, since PostgreSQL text cannot hold a NUL character.

    Outside strings JSON has no NUL, so the escaped text parses back to the same value.
    """
    return canonical.replace("\x00", "\\u0000")


def check_text(field: str, value: Any, *, max_length: int | None = None) -> str:
    """A string the database can hold as text: valid UTF-8, no NUL, not longer than `max_length`."""
    if not isinstance(value, str):
        raise InvalidDocument(field, "must be a string")
    if "\x00" in value:
        raise InvalidDocument(field, "must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidDocument(field, f"not representable as UTF-8: {exc.reason}") from exc
    if max_length is not None and len(value) > max_length:
        raise InvalidDocument(field, f"at most {max_length} characters")
    return value


def check_document(document: Any) -> dict[str, Any]:
    """Check the document's shape (not its inputs: that is the kind's job) and return it."""
    if not isinstance(document, dict):
        raise InvalidDocument("", f"a scenario document is a JSON object, got {type(document).__name__}")
    missing = sorted(DOCUMENT_KEYS - document.keys())
    if missing:
        raise InvalidDocument(missing[0], "field required")
    unknown = sorted(str(key) for key in document.keys() - DOCUMENT_KEYS)
    if unknown:
        # Refused rather than dropped: a stored document must read back as it was saved.
        raise InvalidDocument(unknown[0], "unknown field (a document has schema_version, kind, name, inputs)")
    version = document["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidDocument("schema_version", "must be a positive integer")
    if not isinstance(document["kind"], str) or KIND_PATTERN.fullmatch(document["kind"]) is None:
        raise InvalidDocument("kind", f"must match {KIND_PATTERN.pattern}")
    check_text("name", document["name"], max_length=NAME_MAX_LENGTH)
    if not isinstance(document["inputs"], dict):
        raise InvalidDocument("inputs", "must be a JSON object")
    check_text_limits(document["inputs"])
    return document


def content_of(document: dict[str, Any]) -> dict[str, Any]:
    """The part of a document that identifies it: everything but the (mutable) name."""
    return {key: document[key] for key in CONTENT_KEYS}


def id_for_content_json(content_json: str) -> str:
    digest = hashlib.sha256(content_json.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:ID_LENGTH]


def random_scenario_id() -> str:
    """A fresh id in the same alphabet and length as a content id (60 random bits), for a named copy
    of content that is already saved under its content id."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()[:ID_LENGTH]


def scenario_id_for(document: dict[str, Any]) -> str:
    """The content id of a document: the id its first save gets (a later named copy of the same
    content gets a random id and keeps this one as `content_id`); raises `InvalidDocument`."""
    return id_for_content_json(canonical_json(content_of(check_document(document))))


def is_scenario_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
