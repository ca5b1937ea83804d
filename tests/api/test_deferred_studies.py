"""Quick answers and deferred studies: `POST /evaluate` leaves a kind's costly secondary studies out
(listing them in `deferred`) and computes them when `?include=` names them; saved results are whole."""

from __future__ import annotations

from typing import Any

from dse.catalog import default_catalog
from dse.scenarios.documents import parse_document
from dse.scenarios.registry import KINDS
from dse.services import evaluation

TRAINING = KINDS["training"].examples()[0]  # Megatron-LM GPT 145.6B on 1536 A100s


def _keys(items: list[dict[str, Any]]) -> list[str]:
    return [item["key"] for item in items]


def test_a_quick_answer_lists_what_it_left_out_and_is_small(client: Any) -> None:
    quick = client.post("/api/v1/evaluate", json=TRAINING)
    full = client.post("/api/v1/evaluate", params={"include": "all"}, json=TRAINING)
    assert quick.status_code == full.status_code == 200
    assert _keys(quick.json()["deferred"]) == ["timeline", "sequence_parallel"]
    assert [d["title"] for d in quick.json()["deferred"]] == list(KINDS["training"].deferred_studies.values())
    assert "timeline" not in _keys(quick.json()["charts"]) and "timeline" not in _keys(quick.json()["tables"])
    assert quick.json()["metrics"] == full.json()["metrics"]  # the numbers do not wait for the studies
    assert len(quick.content) < len(full.content) / 4  # ~25 kB instead of ~430 kB


def test_include_adds_exactly_the_named_studies(client: Any) -> None:
    answer = client.post("/api/v1/evaluate", params={"include": "timeline"}, json=TRAINING).json()
    assert _keys(answer["deferred"]) == ["sequence_parallel"]
    assert _keys(answer["charts"]) == ["memory", "time", "timeline"]
    assert "timeline" in _keys(answer["tables"]) and "sequence_parallel" not in _keys(answer["tables"])


def test_include_all_is_the_whole_answer_that_saved_results_give(client: Any) -> None:
    whole = evaluation.evaluate(parse_document(TRAINING), default_catalog()).model_dump(mode="json")
    assert whole["deferred"] == []
    included = client.post("/api/v1/evaluate", params={"include": "timeline,sequence_parallel"}, json=TRAINING)
    assert included.json() == whole
    saved = client.post("/api/v1/scenarios", json=TRAINING).json()
    assert client.get(f"/api/v1/scenarios/{saved['id']}/result").json() == whole


def test_an_unknown_study_is_refused_naming_include(client: Any) -> None:
    response = client.post("/api/v1/evaluate", params={"include": "timeline,gantt"}, json=TRAINING)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "include",
            "reason": "no deferred study 'gantt' in kind 'training' (it has: timeline, sequence_parallel)",
        }
    ]
    rl = KINDS["rl_scaling"].examples()[0]  # a kind with no deferred study: its quick answer is whole
    assert client.post("/api/v1/evaluate", json=rl).json()["deferred"] == []
    assert client.post("/api/v1/evaluate", params={"include": "all"}, json=rl).status_code == 200


def test_a_plan_search_defers_its_collapsed_tables_and_gives_them_when_asked() -> None:
    """A plan search's why table (an engine call and a restricted search) and its offload comparison (a
    second search) wait to be opened; a search without offload does not list the offload study; the
    studies asked for arrive, and all of them make the whole answer a saved result holds."""
    kind, catalog = KINDS["plan_search"], default_catalog()
    with_offload = next(e for e in kind.examples() if "NVMe" in e["name"])
    document = parse_document({**with_offload, "inputs": {**with_offload["inputs"], "search_effort": "quick"}})
    quick = evaluation.evaluate(document, catalog, include=[])
    assert _keys([d.model_dump() for d in quick.deferred]) == ["why_top_plan", "offload"]
    assert not {"why_top_plan", "offload_effect"} & {t.key for t in quick.tables}
    why = evaluation.evaluate(document, catalog, include=["why_top_plan"])
    assert [t.key for t in why.tables] == [*(t.key for t in quick.tables), "why_top_plan"]
    assert _keys([d.model_dump() for d in why.deferred]) == ["offload"]
    whole = evaluation.evaluate(document, catalog)
    assert evaluation.evaluate(document, catalog, include=["all"]) == whole
    assert [t.key for t in whole.tables][-2:] == ["why_top_plan", "offload_effect"] and whole.deferred == []
    assert whole.metrics == quick.metrics  # the numbers do not wait for the studies
    without = next(e for e in kind.examples() if "NVMe" not in e["name"] and "18.4B" in e["name"])
    assert [d.key for d in evaluation.evaluate(parse_document(without), catalog, include=[]).deferred] == [
        "why_top_plan"
    ]
