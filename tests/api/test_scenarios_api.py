"""Saved scenarios through the API: ids by content, owner tokens, ETags, forks, listing, results."""

from __future__ import annotations

import pytest

DOC = {
    "schema_version": 1,
    "kind": "toy",
    "name": "GPT-3 7B at batch 8",
    "inputs": {"model": "gpt3-7b", "batch_size": 8},
}


def _save(client, doc=DOC, **params):
    response = client.post("/api/v1/scenarios", json=doc, params=params)
    assert response.status_code in (200, 201), response.text
    return response


def test_two_owners_saving_the_same_inputs_each_get_their_own_named_scenario(toy_client):
    first = _save(toy_client)
    assert first.status_code == 201 and first.json()["created"] and first.json()["owner_token"]
    assert first.json()["same_content_as"] is None and first.json()["id"] == first.json()["content_id"]
    second = _save(toy_client, {**DOC, "name": "another title"})
    mine, theirs = first.json(), second.json()
    # The second saver's own copy: own id, own name, own token; the same content id.
    assert second.status_code == 201 and theirs["created"]
    assert theirs["id"] != mine["id"] and theirs["content_id"] == mine["content_id"]
    assert theirs["name"] == theirs["requested_name"] == theirs["document"]["name"] == "another title"
    assert theirs["owner_token"] not in (None, mine["owner_token"])
    # Said plainly: identical inputs exist, under the first saver's name and id.
    assert theirs["same_content_id"] == mine["id"]
    assert f"already saved as 'GPT-3 7B at batch 8' ({mine['id']})" in theirs["same_content_as"]
    # Each sees its own name; the first save and its link are unchanged.
    assert toy_client.get(f"/api/v1/scenarios/{mine['id']}").json()["name"] == DOC["name"]
    assert toy_client.get(f"/api/v1/scenarios/{theirs['id']}").json()["name"] == "another title"
    assert toy_client.get(f"/s/{mine['id']}").status_code == 200
    # Each renames and deletes its own only.
    for scenario, token in ((mine, theirs["owner_token"]), (theirs, mine["owner_token"])):
        url = f"/api/v1/scenarios/{scenario['id']}"
        assert toy_client.patch(url, json={"name": "x"}, headers={"X-Owner-Token": token}).status_code == 403
        assert toy_client.delete(url, headers={"X-Owner-Token": token}).status_code == 403
    url = f"/api/v1/scenarios/{theirs['id']}"
    renamed = toy_client.patch(url, json={"name": "theirs, renamed"}, headers={"X-Owner-Token": theirs["owner_token"]})
    assert renamed.status_code == 200 and renamed.json()["name"] == "theirs, renamed"
    # The listing shows both, each under its own name.
    listed = toy_client.get("/api/v1/scenarios").json()
    assert listed["total"] == 2 and [i["name"] for i in listed["items"]] == ["theirs, renamed", DOC["name"]]
    assert toy_client.delete(url, headers={"X-Owner-Token": theirs["owner_token"]}).status_code == 204
    assert toy_client.get(f"/api/v1/scenarios/{mine['id']}").json()["name"] == DOC["name"]
    other = _save(toy_client, {**DOC, "inputs": {"batch_size": 9}}).json()
    assert other["content_id"] != mine["content_id"] and other["same_content_as"] is None


def test_the_same_owner_saving_twice_gets_one_scenario(toy_client):
    first = _save(toy_client).json()
    owner = {"X-Owner-Token": first["owner_token"]}
    again = toy_client.post("/api/v1/scenarios", json=DOC, headers=owner)
    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["created"], again.json()["owner_token"]) == (first["id"], False, None)
    assert again.json()["same_content_as"] is None
    # Another name is another scenario of theirs (the first keeps its name); a stranger's save is a copy.
    named = toy_client.post("/api/v1/scenarios", json={**DOC, "name": "second name"}, headers=owner).json()
    assert named["created"] and named["id"] != first["id"] and named["same_content_id"] == first["id"]
    stranger = toy_client.post("/api/v1/scenarios", json=DOC, headers={"X-Owner-Token": "not a token"}).json()
    assert stranger["created"] and stranger["id"] not in (first["id"], named["id"])
    assert toy_client.get("/api/v1/scenarios").json()["total"] == 3
    fork = toy_client.post(f"/api/v1/scenarios/{first['id']}/fork", json={}, headers=owner)
    assert fork.status_code == 200 and fork.json()["id"] == first["id"]  # an unchanged fork of one's own


def test_defaults_are_part_of_the_content(toy_client):
    explicit = _save(toy_client, {**DOC, "inputs": {"model": "gpt3-7b", "batch_size": 8, "bytes_per_param": 2.0}})
    assert explicit.json()["content_id"] == _save(toy_client).json()["content_id"]


def test_etag_and_if_none_match(toy_client):
    scenario_id = _save(toy_client).json()["id"]
    response = toy_client.get(f"/api/v1/scenarios/{scenario_id}")
    etag = response.headers["etag"]
    assert response.json()["document"]["inputs"]["batch_size"] == 8
    assert toy_client.get(f"/api/v1/scenarios/{scenario_id}", headers={"If-None-Match": etag}).status_code == 304


def test_only_the_owner_renames_or_deletes(toy_client):
    saved = _save(toy_client).json()
    url = f"/api/v1/scenarios/{saved['id']}"
    etag = toy_client.get(url).headers["etag"]
    assert toy_client.patch(url, json={"name": "x"}, headers={"X-Owner-Token": "wrong"}).status_code == 403
    missing = toy_client.patch(url, json={"name": "x"})
    assert missing.status_code == 401 and "X-Owner-Token" in missing.json()["detail"]
    assert missing.json()["errors"][0]["field"] == "X-Owner-Token"
    assert toy_client.delete(url).status_code == 401
    assert toy_client.delete(url, headers={"X-Owner-Token": "wrong"}).status_code == 403
    renamed = toy_client.patch(url, json={"name": "<b>renamed</b>"}, headers={"X-Owner-Token": saved["owner_token"]})
    assert renamed.status_code == 200 and renamed.json()["name"] == "<b>renamed</b>"
    assert toy_client.get(url, headers={"If-None-Match": etag}).status_code == 200  # renamed: new ETag
    assert toy_client.delete(url, headers={"X-Owner-Token": saved["owner_token"]}).status_code == 204
    assert toy_client.get(url).status_code == 404


def test_fork_points_at_its_parent(toy_client):
    parent = _save(toy_client).json()
    fork = toy_client.post(f"/api/v1/scenarios/{parent['id']}/fork", json={"inputs": {"batch_size": 32}})
    assert fork.status_code == 201, fork.text
    assert fork.json()["parent_id"] == parent["id"] and fork.json()["document"]["inputs"]["batch_size"] == 32
    bad = toy_client.post(f"/api/v1/scenarios/{parent['id']}/fork", json={"inputs": {"batch_size": -1}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "inputs.batch_size"


def test_list_paginates_and_filters(toy_client):
    for batch in range(1, 6):
        _save(toy_client, {**DOC, "inputs": {"batch_size": batch}})
    page = toy_client.get("/api/v1/scenarios", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert "owner_token" not in str(page)
    assert toy_client.get("/api/v1/scenarios", params={"kind": "inference"}).json()["total"] == 0
    assert toy_client.get("/api/v1/scenarios", params={"limit": 0}).status_code == 422


def test_result_of_a_saved_scenario_and_compare_by_id(toy_client):
    a = _save(toy_client).json()["id"]
    b = _save(toy_client, {**DOC, "inputs": {"batch_size": 16}}).json()["id"]
    result = toy_client.get(f"/api/v1/scenarios/{a}/result")
    assert result.status_code == 200 and result.json()["engine_version"] == "toy-1"
    again = toy_client.get(f"/api/v1/scenarios/{a}/result")
    assert again.json() == result.json()
    comparison = toy_client.post("/api/v1/compare", json={"items": [a, b]}).json()
    assert comparison["inputs_differ"][0]["path"] == "inputs.batch_size"
    assert toy_client.post("/api/v1/compare", json={"items": [a, "nope"]}).status_code == 404


def test_unknown_ids_are_404(toy_client):
    for method, path in (
        ("get", "/api/v1/scenarios/nope"),
        ("get", "/api/v1/scenarios/nope/result"),
        ("post", "/api/v1/scenarios/nope/fork"),
    ):
        response = getattr(toy_client, method)(path, **({"json": {}} if method == "post" else {}))
        assert response.status_code == 404, path
    response = toy_client.post("/api/v1/scenarios", json=DOC, params={"parent": "nope"})
    assert response.status_code == 404


def test_saved_scenarios_survive_a_restart(toy_kind, make_client, tmp_path):
    url = f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    first = make_client(database_url=url)
    scenario_id = _save(first).json()["id"]
    second = make_client(database_url=url)
    assert second.get(f"/api/v1/scenarios/{scenario_id}").json()["name"] == DOC["name"]


# -- bounded work (issue 17): summaries, text limits, quota and rates, store failures -------------

SUMMARY_KEYS = {"id", "kind", "name", "parent_id", "created_at", "updated_at", "revision", "content_id", "share_url"}


def _inline_model(**changes):
    from dataclasses import asdict

    from dse.catalog import default_catalog

    return {**asdict(default_catalog().get("llms", "gpt3-7b")), **changes}


def test_listing_returns_summaries_never_documents(toy_client):
    parent = _save(toy_client).json()
    _save(toy_client, {**DOC, "inputs": {"batch_size": 3}}, parent=parent["id"])
    items = toy_client.get("/api/v1/scenarios").json()["items"]
    assert [set(item) for item in items] == [SUMMARY_KEYS, SUMMARY_KEYS]
    assert items[0]["parent_id"] == parent["id"] and items[1]["parent_id"] is None
    schema = toy_client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    listed = schema["ScenarioPage"]["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[1]
    assert set(schema[listed]["properties"]) == SUMMARY_KEYS
    assert "document" in schema["ScenarioOut"]["properties"]  # reading one scenario still gives it


def test_free_text_in_a_saved_document_is_bounded_per_field(toy_client):
    cases = [
        ({"name": "n" * 201}, "name"),
        ({"inputs": {"model": _inline_model(source="s" * 4001)}}, "inputs.model.source"),
        (
            {"inputs": {"model": _inline_model(published_params_source="s" * 4001)}},
            "inputs.model.published_params_source",
        ),
        ({"inputs": {"model": _inline_model(name="n" * 201)}}, "inputs.model.name"),
        ({"inputs": {"model": _inline_model(id="i" * 129)}}, "inputs.model.id"),
        ({"inputs": {"model": "m" * 1001}}, "inputs.model"),
    ]
    for change, field in cases:
        response = toy_client.post("/api/v1/scenarios", json={**DOC, **change})
        assert response.status_code == 422, (field, response.text[:300])
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text[:300]
    within = _inline_model(source="s" * 4000, name="n" * 200, id="i" * 128)
    assert toy_client.post("/api/v1/scenarios", json={**DOC, "inputs": {"model": within}}).status_code == 201


def _assert_429(response):
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json()["errors"][0]["field"] == "(request)"
    return response.json()


def test_the_save_quota_counts_new_scenarios_per_client(toy_kind, make_client):
    client = make_client(save_quota_per_day=2)
    first = _save(client).json()
    _save(client, {**DOC, "inputs": {"batch_size": 2}})
    body = _assert_429(client.post("/api/v1/scenarios", json={**DOC, "inputs": {"batch_size": 3}}))
    assert "at most 2 new scenarios a day" in body["detail"]
    _assert_429(client.post(f"/api/v1/scenarios/{first['id']}/fork", json={"inputs": {"batch_size": 4}}))
    assert client.get("/api/v1/scenarios").json()["total"] == 2  # nothing saved by the refusals


def test_saving_ones_own_scenario_again_does_not_spend_the_quota(toy_kind, make_client):
    client = make_client(save_quota_per_day=1)
    owner = {"X-Owner-Token": _save(client).json()["owner_token"]}
    for _ in range(2):  # the same scenario of one's own: 200, nothing new
        assert client.post("/api/v1/scenarios", json=DOC, headers=owner).status_code == 200
    _assert_429(client.post("/api/v1/scenarios", json={**DOC, "inputs": {"batch_size": 2}}))
    _assert_429(client.post("/api/v1/scenarios", json=DOC))  # a named copy is a new scenario


def test_mutating_requests_are_rate_limited_per_client(toy_kind, make_client):
    client = make_client(write_rate_per_minute=1, write_burst=2)
    saved = _save(client).json()
    url = f"/api/v1/scenarios/{saved['id']}"
    assert client.patch(url, json={"name": "x"}, headers={"X-Owner-Token": saved["owner_token"]}).status_code == 200
    body = _assert_429(client.delete(url, headers={"X-Owner-Token": saved["owner_token"]}))
    assert "at most 1 a minute" in body["detail"]
    assert int(client.post("/api/v1/scenarios", json=DOC).headers["retry-after"]) <= 60
    for _ in range(5):  # reads are not limited, evaluations have a bucket of their own
        assert client.get(url).status_code == 200
    assert client.post("/api/v1/evaluate", json=DOC).status_code == 200


def test_evaluations_have_their_own_rate(toy_kind, make_client):
    client = make_client(evaluation_rate_per_minute=1, evaluation_burst=2)
    saved = _save(client).json()
    assert client.post("/api/v1/evaluate", json=DOC).status_code == 200
    assert client.get(f"/api/v1/scenarios/{saved['id']}/result").status_code == 200
    _assert_429(client.post("/api/v1/evaluate", json=DOC))
    _assert_429(client.post("/api/v1/sweep", json={"document": DOC, "axes": [{"path": "batch_size", "values": [1]}]}))
    _assert_429(client.get(f"/api/v1/scenarios/{saved['id']}/result"))
    assert _save(client, {**DOC, "inputs": {"batch_size": 5}}).status_code == 201  # saves are not evaluations


def test_rate_limits_and_quota_can_be_turned_off(toy_kind, make_client):
    client = make_client(write_rate_per_minute=0, write_burst=1, evaluation_rate_per_minute=0, save_quota_per_day=0)
    for batch in range(1, 6):
        _save(client, {**DOC, "inputs": {"batch_size": batch}})
        assert client.post("/api/v1/evaluate", json=DOC).status_code == 200


def test_concurrent_deletes_of_one_scenario_give_one_204_and_one_404(toy_client):
    import threading

    for batch in range(1, 4):
        saved = _save(toy_client, {**DOC, "inputs": {"batch_size": batch}}).json()
        statuses: list[int] = []
        start = threading.Barrier(2)

        def delete(saved=saved, statuses=statuses, start=start):
            start.wait()
            response = toy_client.delete(
                f"/api/v1/scenarios/{saved['id']}", headers={"X-Owner-Token": saved["owner_token"]}
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=delete) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [204, 404]


def test_an_unexpected_error_is_a_500_problem_with_the_security_headers(client):
    def boom():
        raise RuntimeError("a bug")

    client.app.add_api_route("/api/v1/test-boom", boom)
    response = client.get("/api/v1/test-boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "a bug" not in response.text
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy"):
        assert header in response.headers, header


def test_health_reports_the_store(client):
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["store"] == {"state": "ok", "backend": "sqlite"}


def _break_the_store(client, pragma):
    """Every new connection of the app's store gets `pragma` (e.g. a page limit: a full disk)."""
    import sqlalchemy as sa

    engine = client.app.state.store.engine
    sa.event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.execute(pragma))
    engine.dispose()


def test_a_full_disk_is_a_logged_503_and_health_says_degraded(toy_kind, make_client, caplog):
    client = make_client(store_check_interval_s=0)
    _save(client)
    # SQLite answers SQLITE_FULL ("database or disk is full") once the file may not grow.
    _break_the_store(client, "PRAGMA max_page_count = 1")
    big = {**DOC, "inputs": {"model": _inline_model(source="s" * 4000), "batch_size": 2}}
    with caplog.at_level("ERROR", logger="dse.store"):
        response = client.post("/api/v1/scenarios", json=big)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "(store)", "reason": "disk full"}]
    assert response.headers["retry-after"] == "30"
    assert any("disk is full" in record.getMessage() for record in caplog.records), caplog.text
    health = client.get("/api/v1/health").json()
    assert health["status"] == "degraded" and health["store"]["state"] == "unavailable"
    assert health["store"]["reason"] == "disk full" and health["store"]["last_failure_age_s"] >= 0
    assert client.get("/api/v1/scenarios").status_code == 200  # reads still work
    assert client.post("/api/v1/evaluate", json=DOC).status_code == 200  # so do evaluations


def test_a_read_only_store_is_a_logged_503(toy_kind, make_client, caplog):
    client = make_client(store_check_interval_s=0)
    _break_the_store(client, "PRAGMA query_only = 1")  # SQLITE_READONLY, as a read-only file gives
    with caplog.at_level("ERROR", logger="dse.store"):
        response = client.post("/api/v1/scenarios", json=DOC)
    assert response.status_code == 503 and response.json()["errors"][0]["reason"] == "read-only"
    assert any("readonly" in record.getMessage() for record in caplog.records), caplog.text
    assert client.get("/api/v1/health").json()["store"]["reason"] == "read-only"


def test_a_damaged_store_file_stops_the_app_from_starting(make_client, tmp_path):
    from dse.store import Corrupt

    path = tmp_path / "damaged.sqlite3"
    path.write_bytes(b"this is not a SQLite database" * 200)
    with pytest.raises(Corrupt, match=str(path)):
        make_client(database_url=f"sqlite:///{path}")


def test_a_document_that_cannot_be_evaluated_is_refused_before_it_is_saved(make_client):
    """Saves evaluate first (issue 17): a plan search over 65,536 GPUs is priced above the plan limit and refused
    with 422 naming the input that drives its cost; nothing is stored, so nothing saved answers 500 later."""
    client = make_client()
    doc = {
        "schema_version": 1,
        "kind": "plan_search",
        "name": "too large to search interactively",
        "inputs": {"cluster": {"nodes": 8192, "gpus_per_node": 8}},
    }
    refused = client.post("/api/v1/scenarios", json=doc)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["field"].startswith("cluster")
    assert client.get("/api/v1/scenarios").json()["total"] == 0
