"""The scenario store: saved scenarios addressed by the hash of their content, with owner tokens
and a results cache per engine version, on SQLite (WAL) or PostgreSQL. See docs/store.md."""

from dse.store.documents import canonical_json, check_document, scenario_id_for
from dse.store.errors import Corrupt, Forbidden, InvalidDocument, NotFound, StoreError, Unavailable
from dse.store.store import Page, SaveResult, ScenarioRecord, ScenarioSummary, Store, StoreHealth

__all__ = [
    "Corrupt",
    "Forbidden",
    "InvalidDocument",
    "NotFound",
    "Page",
    "SaveResult",
    "ScenarioRecord",
    "ScenarioSummary",
    "Store",
    "StoreError",
    "StoreHealth",
    "Unavailable",
    "canonical_json",
    "check_document",
    "scenario_id_for",
]
