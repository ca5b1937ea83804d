"""Documents, evaluation, sweeps, compare and problem+json errors, through the HTTP API (toy kind)."""

from __future__ import annotations

DOC = {"schema_version": 1, "kind": "toy", "name": "toy", "inputs": {"model": "gpt3-7b", "batch_size": 8}}


def test_evaluate_returns_metrics_with_math(toy_client):
    response = toy_client.post("/api/v1/evaluate", json=DOC)
    assert response.status_code == 200, response.text
    metrics = {m["key"]: m for m in response.json()["metrics"]}
    # 6,658,404,352 parameters (tests/catalog) x 2 bytes.
    assert metrics["weight_bytes"]["value"] == 2 * 6_658_404_352
    assert metrics["weight_bytes"]["formula"] == "N * w"
    assert metrics["bytes_per_request"]["terms"]["B"] == 8


def test_unknown_field_names_the_field(toy_client):
    bad = {**DOC, "inputs": {"batch_size": 8, "batch_sise": 3}}
    response = toy_client.post("/api/v1/evaluate", json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "inputs.batch_sise"


def test_out_of_range_and_wrong_type(toy_client):
    for value, field in ((0, "inputs.batch_size"), ("many", "inputs.batch_size")):
        response = toy_client.post("/api/v1/evaluate", json={**DOC, "inputs": {"batch_size": value}})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field


def test_cross_field_rule_is_a_422_naming_the_field(toy_client):
    response = toy_client.post("/api/v1/evaluate", json={**DOC, "inputs": {"batch_size": 13}})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "batch_size", "reason": "13 is unlucky"}]


def test_unknown_preset_and_kind(toy_client):
    response = toy_client.post("/api/v1/evaluate", json={**DOC, "inputs": {"model": "gpt-5"}})
    assert response.status_code == 422 and "gpt-5" in response.text
    response = toy_client.post("/api/v1/evaluate", json={**DOC, "kind": "weather"})
    assert response.status_code == 422


def test_inline_model_instead_of_preset(toy_client, client=None):
    preset = toy_client.get("/api/v1/catalog/llms/gpt3-7b").json()
    inline = {k: v for k, v in preset.items() if not k.startswith("derived")}
    inline.update(id="custom", num_layers=16)
    response = toy_client.post("/api/v1/evaluate", json={**DOC, "inputs": {"model": inline}})
    assert response.status_code == 200, response.text
    full = toy_client.post("/api/v1/evaluate", json=DOC).json()["metrics"][0]["value"]
    assert response.json()["metrics"][0]["value"] < full


def test_sweep_two_axes_is_one_grid(toy_client):
    body = {
        "document": DOC,
        "axes": [{"path": "batch_size", "values": [1, 2, 4]}, {"path": "bytes_per_param", "values": [1, 2]}],
    }
    response = toy_client.post("/api/v1/sweep", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["shape"] == [3, 2]
    grid = out["metrics"]["bytes_per_request"]
    assert grid[0][1] == 2 * 6_658_404_352 and grid[2][0] == 6_658_404_352 / 4


def test_sweep_over_a_preset_field(toy_client):
    body = {"document": DOC, "axes": [{"path": "model.num_layers", "values": [16, 32]}]}
    out = toy_client.post("/api/v1/sweep", json=body).json()
    assert out["metrics"]["weight_bytes"][0] < out["metrics"]["weight_bytes"][1]


def test_sweep_refusals_name_the_axis(toy_client):
    cases = [
        ([{"path": "nope", "values": [1]}], "axes[0].path"),
        ([{"path": "batch_size", "values": [1, 13]}], "axes[0].values"),
        ([{"path": "batch_size", "values": [1, 2.5]}], "axes[0].values"),
        ([{"path": "batch_size", "values": [1, 9999]}], "axes[0].values"),
    ]
    for axes, field in cases:
        response = toy_client.post("/api/v1/sweep", json={"document": DOC, "axes": axes})
        assert response.status_code == 422, (axes, response.text)
        assert response.json()["errors"][0]["field"] == field


def test_oversized_sweep_is_refused(toy_client):
    axes = [{"path": "batch_size", "values": list(range(1, 1001))}, {"path": "bytes_per_param", "values": [1.0] * 1000}]
    response = toy_client.post("/api/v1/sweep", json={"document": DOC, "axes": axes})
    assert response.status_code in (413, 422)


def test_body_limit_is_413(make_client, toy_kind):
    small = make_client(max_body_bytes=1000)
    response = small.post("/api/v1/evaluate", json={**DOC, "name": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "(body)"


def test_deeply_nested_json_is_422(toy_client):
    body = "[" * 5000 + "]" * 5000
    response = toy_client.post("/api/v1/evaluate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_non_finite_numbers_are_refused(toy_client):
    body = '{"schema_version":1,"kind":"toy","name":"x","inputs":{"bytes_per_param":NaN}}'
    response = toy_client.post("/api/v1/evaluate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_compare_inline_documents(toy_client):
    other = {**DOC, "name": "bigger batch", "inputs": {"model": "gpt3-7b", "batch_size": 16}}
    response = toy_client.post("/api/v1/compare", json={"items": [DOC, other]})
    assert response.status_code == 200, response.text
    out = response.json()
    assert [d["path"] for d in out["inputs_differ"]] == ["inputs.batch_size"]
    per_request = next(m for m in out["metrics"] if m["key"] == "bytes_per_request")
    assert per_request["relative_delta"] == [0.0, -0.5]


def test_compare_needs_two_to_eight(toy_client):
    assert toy_client.post("/api/v1/compare", json={"items": [DOC]}).status_code == 422
    assert toy_client.post("/api/v1/compare", json={"items": [DOC] * 9}).status_code == 422


def test_schema_examples_and_openapi(toy_client):
    schema = toy_client.get("/api/v1/kinds/toy/schema").json()
    assert "batch_size" in str(schema)
    examples = toy_client.get("/api/v1/examples").json()
    assert any(e["kind"] == "toy" for e in examples)
    for example in examples:
        assert toy_client.post("/api/v1/evaluate", json=example).status_code == 200, example["name"]
    openapi = toy_client.get("/api/v1/openapi.json").json()
    assert "ToyDocument" in openapi["components"]["schemas"]
    assert toy_client.get("/api/v1/kinds/nope/schema").status_code == 404


def test_security_headers_on_pages_and_api(toy_client):
    for path in ("/", "/api/v1/health", "/s/abc"):
        response = toy_client.get(path)
        assert response.status_code == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_plotly_is_served_locally(toy_client):
    response = toy_client.get("/vendor/plotly.min.js")
    assert response.status_code == 200 and len(response.content) > 1_000_000
    html = toy_client.get("/").text
    assert "https://" not in html and "http://" not in html


def test_nul_in_a_name_is_a_422_not_a_500(toy_client):
    response = toy_client.post("/api/v1/scenarios", json={**DOC, "name": "a\u0000b"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "name"
    saved = toy_client.post("/api/v1/scenarios", json=DOC).json()
    renamed = toy_client.patch(f"/api/v1/scenarios/{saved['id']}", json={"name": "x\u0000"},
                               headers={"X-Owner-Token": saved["owner_token"]})
    assert renamed.status_code == 422
    assert toy_client.get(f"/api/v1/scenarios/{saved['id']}").json()["name"] == DOC["name"]
