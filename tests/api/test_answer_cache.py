"""Answers to unsaved documents are kept per server process (dse.services.answers): the same document
is evaluated once, a changed one (inputs, name, studies asked for) again; the cache is bounded in bytes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dse.scenarios.registry import KINDS
from dse.services import evaluation, limits
from dse.services.answers import AnswerCache

TEMPORAL = KINDS["temporal_batching"].examples()[0]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the documents the engines evaluated."""
    calls: list[str] = []
    original = evaluation.evaluate

    def counting(document: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(document.name)
        return original(document, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", counting)
    return calls


def test_the_same_document_is_answered_from_the_cache(make_client: Any, counted: list[str]) -> None:
    client = make_client()
    first = client.post("/api/v1/evaluate", json=TEMPORAL)
    again = client.post("/api/v1/evaluate", json=TEMPORAL)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and len(counted) == 1

    edited = copy.deepcopy(TEMPORAL)
    edited["inputs"]["temporal_batch_events"] = 11
    renamed = {**TEMPORAL, "name": "another name"}
    assert client.post("/api/v1/evaluate", json=edited).json() != first.json()
    assert client.post("/api/v1/evaluate", json=renamed).status_code == 200
    assert client.post("/api/v1/evaluate", params={"include": "all"}, json=TEMPORAL).status_code == 200
    assert len(counted) == 4  # each change is evaluated


def test_a_medium_document_is_kept_too_and_errors_never_are(make_client: Any, counted: list[str]) -> None:
    client = make_client()
    pruning = KINDS["pruning"].examples()[0]
    assert evaluation.is_medium(evaluation.parse_document(pruning))
    assert (
        client.post("/api/v1/evaluate", json=pruning).content == client.post("/api/v1/evaluate", json=pruning).content
    )
    assert len(counted) == 1
    kept = len(client.app.state.answer_cache)
    bad = copy.deepcopy(TEMPORAL)
    bad["inputs"]["temporal_batch_events"] = 10**30
    assert client.post("/api/v1/evaluate", json=bad).status_code == 422
    assert len(client.app.state.answer_cache) == kept


def test_a_zero_budget_keeps_nothing(make_client: Any, counted: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSE_ANSWER_CACHE_BYTES", "0")
    limits.get_limits.cache_clear()
    try:
        client = make_client()
        for _ in range(2):
            assert client.post("/api/v1/evaluate", json=TEMPORAL).status_code == 200
    finally:
        monkeypatch.undo()
        limits.get_limits.cache_clear()
    assert len(counted) == 2


def test_the_least_recently_used_answer_goes_first_and_the_budget_holds() -> None:
    cache = AnswerCache(max_bytes=400)
    for key in "abc":
        cache.put(key, b"x" * 100)
    assert cache.get("a") == b"x" * 100  # a is now the most recent
    cache.put("d", b"y" * 100)
    cache.put("e", b"z" * 100)  # over 400 bytes: b, the least recently used, goes
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 4 and cache.bytes == 400
    cache.put("f", b"w" * 101)  # more than a quarter of the budget: not kept
    assert cache.get("f") is None and cache.bytes == 400
    cache.put("a", b"v" * 50)  # replacing an answer counts its new size only
    assert cache.get("a") == b"v" * 50 and cache.bytes == 350
