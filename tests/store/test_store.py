"""Scenario store behaviour, run on SQLite and on PostgreSQL (see conftest.py)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.support.documents import make_document

import dse.store.store as store_module
from dse.store import (
    Forbidden,
    InvalidDocument,
    NotFound,
    SaveResult,
    ScenarioRecord,
    Store,
    StoreError,
    scenario_id_for,
)


def _all_rows_text(store: Store) -> str:
    """Every value of every table, as one string."""
    with store.engine.connect() as connection:
        names = sa.inspect(connection).get_table_names()
        return repr([connection.execute(sa.text(f'SELECT * FROM "{name}"')).all() for name in names])


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


# -- identity -------------------------------------------------------------------------------------


def test_save_returns_the_content_id_the_document_and_an_owner_token(store: Store) -> None:
    document = make_document()
    saved = store.save(document)
    assert saved.created
    assert saved.record.id == scenario_id_for(document)
    assert saved.record.document == document
    assert (saved.record.kind, saved.record.name, saved.record.parent_id, saved.record.revision) == (
        "inference",
        document["name"],
        None,
        1,
    )
    assert saved.owner_token is not None and len(saved.owner_token) >= 43  # 32 random bytes, base64url
    assert store.get(saved.record.id) == saved.record


def test_same_content_saved_again_is_the_savers_own_named_copy(store: Store) -> None:
    first = store.save(make_document(name="first"))
    again = store.save(make_document(name="my copy"), parent_id=first.record.id)
    assert again.created and again.record.id != first.record.id
    assert (again.record.name, again.record.document["name"], again.record.parent_id) == (
        "my copy",
        "my copy",
        first.record.id,
    )
    assert again.record.content_id == first.record.content_id == first.record.id  # the first keeps the hash
    assert again.owner_token is not None and again.owner_token != first.owner_token
    assert again.same_content == first.record.summary() and first.same_content is None
    assert store.get(first.record.id) == first.record  # nothing of the first save changed
    assert store.get(again.record.id) == again.record
    assert [item.name for item in store.list().items] == ["my copy", "first"]


def test_each_copy_is_renamed_and_deleted_by_its_own_token_only(store: Store) -> None:
    first = store.save(make_document(name="first"))
    second = store.save(make_document(name="second"))
    assert first.owner_token is not None and second.owner_token is not None
    for scenario, token in ((first, second.owner_token), (second, first.owner_token)):
        with pytest.raises(Forbidden):
            store.rename(scenario.record.id, "hijacked", token)
        with pytest.raises(Forbidden):
            store.delete(scenario.record.id, token)
    assert store.rename(second.record.id, "second, renamed", second.owner_token).name == "second, renamed"
    store.delete(first.record.id, first.owner_token)
    assert store.get(second.record.id).name == "second, renamed"  # the copy outlives the first save
    # The content id is free again: the next save of the content takes it and names the copy as earlier.
    third = store.save(make_document(name="third"))
    assert third.record.id == first.record.id and third.same_content is not None
    assert third.same_content.id == second.record.id


def test_the_same_owner_saving_the_same_thing_again_gets_the_same_scenario(store: Store) -> None:
    first = store.save(make_document(name="mine"))
    again = store.save(make_document(name="mine"), owner_token=first.owner_token)
    assert again == SaveResult(record=first.record, owner_token=None, created=False)
    assert store.list().total == 1
    # Under another name it is a second named copy of the owner's (nothing of the first changes) ...
    renamed = store.save(make_document(name="mine, second name"), owner_token=first.owner_token)
    assert renamed.created and renamed.record.name == "mine, second name"
    assert renamed.same_content == first.record.summary()
    # ... and a token that owns something else, or no usable token, never finds it.
    other = store.save(make_document(name="mine", batch=2))
    for token in (other.owner_token, "", "wrong", "\ud800"):
        assert store.save(make_document(name="mine"), owner_token=token).created
    assert store.owned_copy(make_document(name="mine"), first.owner_token) == first.record
    assert store.owned_copy(make_document(name="mine"), other.owner_token) is None
    assert store.get(first.record.id) == first.record


def test_different_content_gives_a_different_scenario(store: Store) -> None:
    one = store.save(make_document(batch=1))
    two = store.save(make_document(batch=2))
    assert one.record.id != two.record.id
    assert two.created and two.owner_token not in (None, one.owner_token)


def test_unicode_and_nul_inside_inputs_round_trip(store: Store) -> None:
    """PostgreSQL text cannot hold NUL; the store escapes it inside the JSON and reads it back."""
    document = make_document(name="Ünïcødé <b>名前</b>", note="nul\x00inside", emoji="🚀")
    saved = store.save(document)
    assert store.get(saved.record.id).document == document


def test_concurrent_saves_of_the_same_content_create_it_once(store: Store) -> None:
    results: list[SaveResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def save() -> None:
        barrier.wait()
        try:
            results.append(store.save(make_document(batch=7)))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(result.created for result in results)  # six savers, six scenarios of their own
    assert len({result.record.id for result in results}) == 6
    assert [result.record.id for result in results].count(scenario_id_for(make_document(batch=7))) == 1
    assert {result.record.content_id for result in results} == {scenario_id_for(make_document(batch=7))}


# -- forks ----------------------------------------------------------------------------------------


def test_editing_saves_a_child_pointing_at_its_parent(store: Store) -> None:
    parent = store.save(make_document(batch=8))
    child = store.save(make_document(name="fork", batch=16), parent_id=parent.record.id)
    assert child.created and child.record.parent_id == parent.record.id
    assert store.get(parent.record.id) == parent.record  # the parent is unchanged


def test_a_missing_parent_is_not_found_and_nothing_is_saved(store: Store) -> None:
    with pytest.raises(NotFound):
        store.save(make_document(), parent_id="aaaaaaaaaaaa")
    with pytest.raises(NotFound):
        store.save(make_document(), parent_id="not an id at all")
    assert store.list().total == 0


def test_deleting_a_parent_leaves_its_children_with_a_dangling_parent_id(store: Store) -> None:
    parent = store.save(make_document(batch=8))
    child = store.save(make_document(batch=16), parent_id=parent.record.id)
    assert parent.owner_token is not None
    store.delete(parent.record.id, parent.owner_token)
    assert store.get(child.record.id).parent_id == parent.record.id
    with pytest.raises(NotFound):
        store.get(parent.record.id)


# -- owner tokens ---------------------------------------------------------------------------------


def test_only_the_owner_token_renames_or_deletes(store: Store) -> None:
    mine = store.save(make_document(batch=1))
    theirs = store.save(make_document(batch=2))
    assert mine.owner_token is not None and theirs.owner_token is not None
    for wrong in ("", "guess", theirs.owner_token, mine.owner_token + "x", "\ud800"):
        with pytest.raises(Forbidden):
            store.rename(mine.record.id, "hijacked", wrong)
        with pytest.raises(Forbidden):
            store.delete(mine.record.id, wrong)
    assert store.get(mine.record.id) == mine.record
    store.delete(mine.record.id, mine.owner_token)
    with pytest.raises(NotFound):
        store.get(mine.record.id)


def test_the_owner_token_is_stored_hashed_and_never_exposed(store: Store, store_url: str) -> None:
    saved = store.save(make_document())
    token = saved.owner_token
    assert token is not None
    assert token not in _all_rows_text(store)
    assert token not in repr(saved.record) and token not in repr(store.list())
    assert "token" not in {field.name for field in dataclasses.fields(ScenarioRecord)}
    if store_url.startswith("sqlite"):  # also the raw bytes, write-ahead log included
        database = Path(store_url.removeprefix("sqlite:///"))
        for path in (database, database.with_name(database.name + "-wal")):
            if path.exists():
                assert token.encode() not in path.read_bytes()


def test_unknown_ids_are_not_found(store: Store) -> None:
    for unknown in ("aaaaaaaaaaaa", "", "../../etc", "x" * 1000):
        with pytest.raises(NotFound):
            store.get(unknown)
        with pytest.raises(NotFound):
            store.rename(unknown, "n", "token")
        with pytest.raises(NotFound):
            store.delete(unknown, "token")


# -- rename and revision --------------------------------------------------------------------------


def test_rename_changes_only_the_name_and_bumps_the_revision(store: Store) -> None:
    saved = store.save(make_document(name="before"))
    assert saved.owner_token is not None
    renamed = store.rename(saved.record.id, "after", saved.owner_token)
    assert (renamed.id, renamed.name, renamed.document["name"], renamed.revision) == (
        saved.record.id,
        "after",
        "after",
        2,
    )
    assert renamed.document["inputs"] == saved.record.document["inputs"]
    assert renamed.created_at == saved.record.created_at and renamed.updated_at >= saved.record.updated_at
    assert store.rename(saved.record.id, "again", saved.owner_token).revision == 3
    assert store.get(saved.record.id).name == "again"
    # Saving the original content again is a copy under the name asked for; the renamed one is named.
    copy = store.save(make_document(name="before"))
    assert copy.record.name == "before" and copy.same_content is not None and copy.same_content.name == "again"


def test_an_invalid_name_is_refused_and_changes_nothing(store: Store) -> None:
    saved = store.save(make_document())
    assert saved.owner_token is not None
    with pytest.raises(InvalidDocument):
        store.rename(saved.record.id, "nul\x00", saved.owner_token)
    assert store.get(saved.record.id) == saved.record


def test_timestamps_are_timezone_aware_utc(store: Store) -> None:
    before = datetime.now(UTC)
    record = store.save(make_document()).record
    assert record.created_at.utcoffset() == timedelta(0)
    # One second of slack for the database's clock resolution.
    assert before - timedelta(seconds=1) <= record.created_at <= datetime.now(UTC) + timedelta(seconds=1)


# -- listing --------------------------------------------------------------------------------------


def test_list_pages_newest_first_with_a_kind_filter_and_totals(store: Store) -> None:
    saved = [store.save(make_document(kind="inference" if i % 3 else "training", batch=i)).record for i in range(7)]
    newest_first = [record.id for record in reversed(saved)]
    page = store.list(limit=3, offset=0)
    assert (page.total, page.limit, page.offset) == (7, 3, 0)
    assert [record.id for record in page.items] == newest_first[:3]
    assert [record.id for record in store.list(limit=3, offset=3).items] == newest_first[3:6]
    assert [record.id for record in store.list(limit=3, offset=6).items] == newest_first[6:]
    assert store.list(limit=3, offset=9).items == []
    training = store.list(kind="training")
    assert training.total == 3 and all(record.kind == "training" for record in training.items)
    assert [record.id for record in training.items] == [r.id for r in reversed(saved) if r.kind == "training"]
    assert store.list(kind="pruning").total == 0


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (-1, 0), (5, -1)])
def test_list_refuses_a_bad_window(store: Store, limit: int, offset: int) -> None:
    with pytest.raises(StoreError):
        store.list(limit=limit, offset=offset)


# -- cached results -------------------------------------------------------------------------------


def test_results_are_cached_per_engine_version(store: Store) -> None:
    scenario_id = store.save(make_document()).record.id
    assert store.cached_result(scenario_id, "inference-1") is None
    store.cache_result(scenario_id, "inference-1", {"tokens_per_s": 1234.5})
    store.cache_result(scenario_id, "inference-2", {"tokens_per_s": 999.0})
    assert store.cached_result(scenario_id, "inference-1") == {"tokens_per_s": 1234.5}
    assert store.cached_result(scenario_id, "inference-2") == {"tokens_per_s": 999.0}
    store.cache_result(scenario_id, "inference-1", {"tokens_per_s": 1.0})  # replaced, not duplicated
    assert store.cached_result(scenario_id, "inference-1") == {"tokens_per_s": 1.0}
    assert store.cached_result("aaaaaaaaaaaa", "inference-1") is None


def test_caching_for_an_unknown_scenario_or_a_bad_result_fails_cleanly(store: Store) -> None:
    scenario_id = store.save(make_document()).record.id
    with pytest.raises(NotFound):
        store.cache_result("aaaaaaaaaaaa", "v1", {"x": 1})
    with pytest.raises(InvalidDocument):
        store.cache_result(scenario_id, "v1", {"x": float("nan")})
    with pytest.raises(InvalidDocument):
        store.cache_result(scenario_id, "", {"x": 1})
    assert _count(store, "scenario_results") == 0


def test_deleting_a_scenario_deletes_its_cached_results(store: Store) -> None:
    kept = store.save(make_document(batch=1)).record.id
    saved = store.save(make_document(batch=2))
    assert saved.owner_token is not None
    store.cache_result(kept, "v1", {"x": 1})
    store.cache_result(saved.record.id, "v1", {"x": 2})
    store.delete(saved.record.id, saved.owner_token)
    assert store.cached_result(saved.record.id, "v1") is None
    assert _count(store, "scenario_results") == 1
    assert store.cached_result(kept, "v1") == {"x": 1}


# -- failures leave earlier data untouched ---------------------------------------------------------


def test_a_failing_save_leaves_earlier_data_untouched(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    earlier = store.save(make_document(batch=1)).record
    with pytest.raises(InvalidDocument):
        store.save(make_document(batch=object()))

    def fail(_row: Any) -> ScenarioRecord:
        raise RuntimeError("crash after the insert, before the commit")

    # A failure inside the transaction, after the row was inserted: rolled back.
    monkeypatch.setattr(store_module, "_record", fail)
    with pytest.raises(RuntimeError):
        store.save(make_document(batch=2))
    monkeypatch.undo()
    with pytest.raises(NotFound):
        store.get(scenario_id_for(make_document(batch=2)))
    assert store.list().items == [earlier.summary()]


def test_a_failing_rename_changes_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = store.save(make_document())
    assert saved.owner_token is not None

    def fail(_row: Any) -> ScenarioRecord:
        raise RuntimeError("crash after the update, before the commit")

    monkeypatch.setattr(store_module, "_record", fail)
    with pytest.raises(RuntimeError):
        store.rename(saved.record.id, "lost", saved.owner_token)
    monkeypatch.undo()
    assert store.get(saved.record.id) == saved.record


def test_data_survives_closing_and_reopening(store: Store, store_url: str) -> None:
    saved = store.save(make_document())
    store.cache_result(saved.record.id, "v1", {"x": 1})
    store.dispose()
    with Store(store_url) as reopened:
        assert reopened.get(saved.record.id) == saved.record
        assert reopened.cached_result(saved.record.id, "v1") == {"x": 1}
