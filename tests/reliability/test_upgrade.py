"""Upgrades: a database written by an earlier release opens with the current code, is migrated to
the newest schema, and keeps everything (docs/reliability.md, "upgrades").

Every tests/fixtures/store-v*.sqlite3 is checked against its manifest (store-v*.json), both written
by tests/fixtures/make_store_fixture.py with that release's code. The fixture is copied first:
the committed file is never modified.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from dse.api.app import create_app
from dse.scenarios.documents import parse_document
from dse.settings import Settings
from dse.store import NotFound, Store
from dse.store.database import alembic_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATABASES = sorted(FIXTURES.glob("store-v*.sqlite3"))


def test_there_is_a_fixture_of_the_current_release() -> None:
    from dse import __version__

    assert (FIXTURES / f"store-v{__version__}.sqlite3").exists(), "run tests/fixtures/make_store_fixture.py"


@pytest.fixture(params=DATABASES, ids=[p.stem for p in DATABASES])
def upgraded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, dict[str, Any], str]]:
    """A copy of one release's database opened (and so migrated) by the current code, its manifest, its URL."""
    source: Path = request.param
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)
    manifest = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
    url = f"sqlite:///{copy}"
    with Store(url) as store:
        yield store, manifest, url


def test_the_old_database_is_migrated_to_the_newest_schema(upgraded: tuple[Store, dict[str, Any], str]) -> None:
    store, _, _ = upgraded
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_every_scenario_survives_unchanged(upgraded: tuple[Store, dict[str, Any], str]) -> None:
    store, manifest, _ = upgraded
    scenarios = manifest["scenarios"]
    assert store.list(limit=1).total == len(scenarios)
    for scenario_id, expected in scenarios.items():
        record = store.get(scenario_id)
        assert record.document == expected["document"], scenario_id
        assert (record.name, record.kind, record.revision, record.parent_id) == (
            expected["name"],
            expected["kind"],
            expected["revision"],
            expected["parent_id"],
        )
        if "cached_engine_version" in expected:
            assert store.cached_result(scenario_id, expected["cached_engine_version"]) is not None
    for scenario_id in manifest["deleted"]:
        with pytest.raises(NotFound):
            store.get(scenario_id)


def test_old_owner_tokens_still_rename_and_delete(upgraded: tuple[Store, dict[str, Any], str]) -> None:
    store, manifest, _ = upgraded
    scenario_id, expected = next(iter(manifest["scenarios"].items()))
    assert store.rename(scenario_id, "renamed after the upgrade", expected["owner_token"]).revision == (
        expected["revision"] + 1
    )
    store.delete(scenario_id, expected["owner_token"])
    with pytest.raises(NotFound):
        store.get(scenario_id)


def test_the_service_serves_the_upgraded_database(upgraded: tuple[Store, dict[str, Any], str]) -> None:
    """Through the API, and every stored document is still a valid document for the current code
    (a release that changes an input incompatibly must migrate the stored documents too)."""
    store, manifest, url = upgraded
    store.dispose()
    with TestClient(create_app(Settings(database_url=url))) as api:
        for scenario_id, expected in manifest["scenarios"].items():
            got = api.get(f"/api/v1/scenarios/{scenario_id}")
            assert got.status_code == 200 and got.json()["document"] == expected["document"]
            parse_document(got.json()["document"])


def test_old_scenarios_keep_their_ids_as_content_ids_and_saving_them_again_makes_a_copy(
    upgraded: tuple[Store, dict[str, Any], str],
) -> None:
    """Migration 0003 (named copies): every older row was saved under its content hash, so its
    `content_id` is its id; a new save of an old document is the saver's own copy, the old one stays."""
    store, manifest, _ = upgraded
    for scenario_id in manifest["scenarios"]:
        assert store.get(scenario_id).content_id == scenario_id
    scenario_id, expected = next(iter(manifest["scenarios"].items()))
    copy = store.save({**expected["document"], "name": "saved again after the upgrade"})
    assert copy.created and copy.record.id != scenario_id and copy.record.content_id == scenario_id
    assert copy.same_content is not None and copy.same_content.id == scenario_id
    assert store.get(scenario_id).document == expected["document"]
