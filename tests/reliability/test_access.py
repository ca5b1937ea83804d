"""Access: owner tokens, ids, listing, CORS and security headers (docs/reliability.md, "access").

Exact checks, no timing: constant-time comparison is shown by the comparison the store makes
(hmac.compare_digest on fixed-length SHA-256 hex digests), not by measuring time, which would
be flaky on a shared 2-core machine.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import dse.store.store as store_module
from dse.api.app import create_app
from dse.scenarios.registry import KINDS
from dse.settings import Settings
from dse.store import canonical_json
from dse.store.documents import ID_LENGTH, content_of, id_for_content_json

EXAMPLE = next(iter(KINDS.values())).examples()[0]
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture
def api(db_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=f"sqlite:///{db_path}")), raise_server_exceptions=False) as c:
        yield c


def _variant(batch_size: int, name: str = "variant") -> dict[str, Any]:
    return {**EXAMPLE, "name": name, "inputs": {**EXAMPLE["inputs"], "batch_size": batch_size}}


def _save(api: TestClient, document: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/scenarios", json=document)
    assert response.status_code == 201, response.text
    saved: dict[str, Any] = response.json()
    return saved


# -- owner token ---------------------------------------------------------------------------------


def test_only_the_owner_token_renames_or_deletes_and_refusals_change_nothing(api: TestClient) -> None:
    mine, theirs = _save(api, _variant(1, "mine")), _save(api, _variant(2, "theirs"))
    url = f"/api/v1/scenarios/{mine['id']}"
    wrong_tokens: list[dict[str, str]] = [
        {},
        {"X-Owner-Token": ""},
        {"X-Owner-Token": "wrong"},
        {"X-Owner-Token": theirs["owner_token"]},  # a real token, of another scenario
        {"X-Owner-Token": mine["owner_token"][:-1]},
        {"X-Owner-Token": mine["owner_token"] + "x"},
    ]
    for headers in wrong_tokens:
        renamed = api.patch(url, json={"name": "hijacked"}, headers=headers)
        deleted = api.delete(url, headers=headers)
        for response in (renamed, deleted):
            assert response.status_code == (401 if not headers else 403), (headers, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    after = api.get(url).json()
    assert after["name"] == "mine" and after["revision"] == 1
    owner = {"X-Owner-Token": mine["owner_token"]}
    assert api.patch(url, json={"name": "renamed"}, headers=owner).json()["revision"] == 2
    assert api.delete(url, headers=owner).status_code == 204
    assert api.get(url).status_code == 404
    # Anyone may read and fork; a fork gets its own token, which does not reach the parent.
    parent_url = f"/api/v1/scenarios/{theirs['id']}"
    fork = api.post(f"{parent_url}/fork", json={"name": "fork", "inputs": _variant(99)["inputs"]}).json()
    assert fork["parent_id"] == theirs["id"]
    assert api.delete(parent_url, headers={"X-Owner-Token": fork["owner_token"] or "none"}).status_code == 403


def test_the_owner_token_is_shown_once_and_stored_only_as_its_sha256(api: TestClient, db_path: Path) -> None:
    saved = _save(api, _variant(3))
    token = saved["owner_token"]
    assert len(token) >= 32  # secrets.token_urlsafe: >= 192 bits
    again = api.post("/api/v1/scenarios", json=_variant(3, "same content")).json()
    assert again["owner_token"] not in (None, token)  # a copy of one's own, never the first saver's token
    engine = sa.create_engine(f"sqlite:///{db_path}")
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT owner_token_sha256 FROM scenarios WHERE id = :id"), saved).scalar()
        columns = connection.execute(sa.text("SELECT * FROM scenarios")).mappings().all()
    engine.dispose()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for row in columns for value in row.values())
    # Nor anywhere in the database files (main file and write-ahead log).
    for path in db_path.parent.glob(db_path.name + "*"):
        assert token.encode() not in path.read_bytes(), path


def test_the_token_is_checked_with_a_constant_time_comparison_of_digests(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store hashes the given token and compares digests with hmac.compare_digest: equal-length
    operands, so the time taken does not depend on where a guess first differs."""
    calls: list[tuple[str, str]] = []
    real = store_module.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(store_module.hmac, "compare_digest", spy)
    saved = _save(api, _variant(4))
    url = f"/api/v1/scenarios/{saved['id']}"
    assert api.patch(url, json={"name": "x"}, headers={"X-Owner-Token": "guess"}).status_code == 403
    assert api.patch(url, json={"name": "x"}, headers={"X-Owner-Token": saved["owner_token"]}).status_code == 200
    assert len(calls) == 2
    for given, stored in calls:
        assert len(given) == len(stored) == 64 and re.fullmatch("[0-9a-f]{64}", given)
    assert calls[1][0] == hashlib.sha256(saved["owner_token"].encode()).hexdigest()


# -- ids -----------------------------------------------------------------------------------------


def test_ids_are_content_hashes_not_guessable_from_each_other(api: TestClient) -> None:
    """Ids of documents one batch size apart: each is the truncated SHA-256 of its content, and
    neighbours share no more than chance (1/32 per character) with each other."""
    ids = []
    for batch in range(1, 41):
        saved = _save(api, _variant(batch))
        content = content_of(saved["document"])
        assert saved["id"] == id_for_content_json(canonical_json(content))
        ids.append(saved["id"])
    assert len(set(ids)) == len(ids) and all(len(i) == ID_LENGTH for i in ids)
    same_positions = [sum(x == y for x, y in zip(a, b, strict=True)) for a, b in itertools.pairwise(ids)]
    # Expected 12/32 = 0.375 equal characters per neighbouring pair; sequential ids would share ~11.
    assert sum(same_positions) / len(same_positions) < 1.5
    assert max(same_positions) <= 4


# -- listing ------------------------------------------------------------------------------------


def test_listing_and_reading_never_show_a_token_or_its_hash(api: TestClient) -> None:
    saved = [_save(api, _variant(batch)) for batch in (5, 6, 7)]
    secrets_ = [s["owner_token"] for s in saved] + [
        hashlib.sha256(s["owner_token"].encode()).hexdigest() for s in saved
    ]
    pages = [
        api.get("/api/v1/scenarios").text,
        api.get("/api/v1/scenarios", params={"kind": EXAMPLE["kind"], "limit": 100}).text,
        *(api.get(f"/api/v1/scenarios/{s['id']}").text for s in saved),
        *(api.get(f"/api/v1/scenarios/{s['id']}/result").text for s in saved),
    ]
    for page in pages:
        assert "owner_token" not in page and "token_sha256" not in page
        assert not any(secret in page for secret in secrets_)


# -- CORS --------------------------------------------------------------------------------------


def _preflight(api: TestClient, origin: str) -> Any:
    return api.options(
        "/api/v1/scenarios",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-owner-token",
        },
    )


def test_cors_is_off_by_default(api: TestClient) -> None:
    assert Settings(database_url="sqlite://").cors_origins == []
    origin = "https://elsewhere.example"
    assert "access-control-allow-origin" not in api.get("/api/v1/health", headers={"Origin": origin}).headers
    assert "access-control-allow-origin" not in _preflight(api, origin).headers


def test_cors_allows_exactly_the_configured_origins(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSE_CORS_ORIGINS", '["https://dash.example"]')
    monkeypatch.setenv("DSE_DATABASE_URL", f"sqlite:///{db_path}")
    settings = Settings()
    assert settings.cors_origins == ["https://dash.example"]
    with TestClient(create_app(settings)) as api:
        allowed = _preflight(api, "https://dash.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
        got = api.get("/api/v1/health", headers={"Origin": "https://dash.example"})
        assert got.headers["access-control-allow-origin"] == "https://dash.example"
        other = api.get("/api/v1/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        assert "access-control-allow-origin" not in _preflight(api, "https://evil.example").headers


# -- security headers ---------------------------------------------------------------------------


def _assert_security_headers(response: Any, what: str) -> None:
    csp = response.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in (part.strip() for part in csp.split(";")) if d}
    assert directives.get("script-src") == ["'self'"], (what, csp)  # no inline script, no eval, no CDN
    assert directives.get("object-src") == ["'none'"] and directives.get("frame-ancestors") == ["'none'"], what
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("x-frame-options") == "DENY", what
    assert response.headers.get("referrer-policy") == "no-referrer", what


def test_security_headers_on_every_page_file_and_api_response(api: TestClient) -> None:
    saved = _save(api, _variant(8))
    sid = saved["id"]
    etag = api.get(f"/api/v1/scenarios/{sid}").headers["etag"]
    static_files = [
        p.relative_to(FRONTEND / "static").as_posix() for p in (FRONTEND / "static").rglob("*") if p.is_file()
    ]
    requests: list[tuple[str, str, dict[str, Any]]] = [
        *(
            ("GET", page, {})
            for page in ("/", "/catalog", "/scenarios", "/compare", "/validation", "/k/inference", f"/s/{sid}")
        ),
        ("GET", "/vendor/plotly.min.js", {}),
        *(("GET", f"/static/{name}", {}) for name in static_files),
        ("GET", "/static/nope.js", {}),
        ("GET", "/api/v1/openapi.json", {}),
        ("GET", "/api/v1/docs", {}),
        ("GET", "/api/v1/health", {}),
        ("GET", "/api/v1/kinds", {}),
        ("GET", "/api/v1/examples", {}),
        ("GET", "/api/v1/catalog", {}),
        ("GET", "/api/v1/catalog/nope", {}),
        ("GET", "/api/v1/scenarios", {}),
        ("GET", f"/api/v1/scenarios/{sid}", {}),
        ("GET", f"/api/v1/scenarios/{sid}", {"headers": {"If-None-Match": etag}}),  # 304
        ("GET", "/api/v1/scenarios/nope", {}),
        ("POST", "/api/v1/evaluate", {"json": EXAMPLE}),
        ("POST", "/api/v1/evaluate", {"json": {}}),  # 422
        ("POST", "/api/v1/evaluate", {"content": b"[" * 100, "headers": {"content-type": "application/json"}}),
        ("POST", "/api/v1/evaluate", {"content": b"x" * 2_000_000}),  # 413
        ("PUT", "/api/v1/health", {}),  # 405
        ("DELETE", f"/api/v1/scenarios/{sid}", {"headers": {"X-Owner-Token": "wrong"}}),  # 403
    ]
    statuses = set()
    for method, path, kwargs in requests:
        response = api.request(method, path, **kwargs)
        statuses.add(response.status_code)
        _assert_security_headers(response, f"{method} {path} -> {response.status_code}")
    assert {200, 304, 403, 404, 405, 413, 422} <= statuses


def test_the_pages_have_no_inline_script_for_the_policy_to_block(api: TestClient) -> None:
    html = api.get("/").text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I)  # no inline event handlers either
