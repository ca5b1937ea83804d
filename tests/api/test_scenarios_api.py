"""Saved scenarios through the API: ids by content, owner tokens, ETags, forks, listing, results."""

from __future__ import annotations

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


def test_same_content_same_id_and_token_only_once(toy_client):
    first = _save(toy_client)
    assert first.status_code == 201 and first.json()["created"] and first.json()["owner_token"]
    again = _save(toy_client, {**DOC, "name": "another title"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["owner_token"] is None and again.json()["name"] == DOC["name"]
    # Said plainly: the name asked for, and that identical inputs exist under another name.
    assert again.json()["requested_name"] == "another title"
    assert "already saved as 'GPT-3 7B at batch 8'" in again.json()["same_content_as"]
    assert first.json()["same_content_as"] is None and first.json()["requested_name"] == DOC["name"]
    same_name = _save(toy_client).json()
    assert same_name["same_content_as"] is None and not same_name["created"]
    other = _save(toy_client, {**DOC, "inputs": {"batch_size": 9}})
    assert other.json()["id"] != first.json()["id"]


def test_defaults_are_part_of_the_content(toy_client):
    explicit = _save(toy_client, {**DOC, "inputs": {"model": "gpt3-7b", "batch_size": 8, "bytes_per_param": 2.0}})
    assert explicit.json()["id"] == _save(toy_client).json()["id"]


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
