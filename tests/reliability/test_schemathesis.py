"""Schemathesis over the OpenAPI schema (/api/v1/openapi.json): every endpoint, in-process (ASGI).

Promise (docs/reliability.md, "bad input"; issue 17 item 6, "OpenAPI matches behaviour"): no input
ever yields a 5xx, every 4xx is problem+json whose `errors` name the field at fault, and the
OpenAPI schema describes what the API does: every schemathesis check runs (`call_and_validate`:
not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance, negative_data_rejection,
positive_data_acceptance, missing_required_header, unsupported_method, use_after_free,
ensure_resource_availability, ignored_auth).

Examples per operation: 200 random (valid and invalid) requests for EVERY operation (the
evaluate, sweep, compare, report and scenarios operations included), plus schemathesis' coverage
phase (boundary and negative values of every parameter) for every operation whose body is not a
whole scenario document. Fixed seed, deterministic generation, no stateful phase. The whole
module is in the full tier only (tests/conftest.py marks it slow); on 2 cores (pytest -n 2) it
takes about 3 minutes (178 s for the 52 tests, measured 2026-11-30).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from dse.api.app import create_app
from dse.settings import Settings

SEED = 20261126
# DSE_FUZZ_EXAMPLES changes it for a local run (e.g. 20 for a quick look, 500 for a deeper one).
MAX_EXAMPLES = int(os.environ.get("DSE_FUZZ_EXAMPLES", "200"))
# Operations whose body is a whole scenario document: the coverage phase enumerates every field of
# every kind's schema there (~45 s on 2 cores), so they get the random phases (valid and invalid
# bodies) only; every other operation also gets the coverage phase.
DOCUMENT_BODIES = [
    "/api/v1/evaluate",
    "/api/v1/sweep",
    "/api/v1/sweep/axes",
    "/api/v1/compare",
    "/api/v1/scenarios",
    "/api/v1/report",
]


def _config(*, coverage: bool) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # A schema-valid document can still be refused: the JSON Schema cannot say "a preset id
            # that exists" (404), cross-field rules such as "tensor parallel divides the heads" or
            # "the model fits the device" (422, with the field named), or a save clash (409).
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}},
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {
                "examples": {"enabled": not coverage},
                "coverage": {"enabled": coverage, "unexpected-methods": ["PUT", "TRACE"]},
                "fuzzing": {"enabled": not coverage},
                "stateful": {"enabled": False},
            },
        }
    )


_DATA_DIR = Path(tempfile.mkdtemp(prefix="dse-schemathesis-"))
atexit.register(shutil.rmtree, _DATA_DIR, ignore_errors=True)
# Thousands of requests from one client: the per-client rate limits and the save quota are off.
APP = create_app(
    Settings(
        database_url=f"sqlite:///{_DATA_DIR / 'store.sqlite3'}",
        write_rate_per_minute=0,
        evaluation_rate_per_minute=0,
        save_quota_per_day=0,
    )
)
random_phases = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP, config=_config(coverage=False))
coverage_phase = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP, config=_config(coverage=True)).exclude(
    method="POST", path=DOCUMENT_BODIES
)


def _headers(response: schemathesis.Response) -> dict[str, str]:
    return {name.lower(): values[0] for name, values in response.headers.items()}


def _check(case: schemathesis.Case) -> None:
    # Every built-in check (the config enables all): not_a_server_error, status_code_conformance,
    # content_type_conformance, response_schema_conformance, response_headers_conformance,
    # negative_data_rejection, positive_data_acceptance, missing_required_header, unsupported_method,
    # use_after_free, ensure_resource_availability, ignored_auth.
    # A loaded 2-core CI machine can take seconds on a first /validation.
    response = case.call_and_validate(timeout=120)
    reproduce = case.as_curl_command()
    assert response.status_code < 500, (response.status_code, response.text[:300], reproduce)
    if response.status_code >= 400:
        assert _headers(response)["content-type"].startswith("application/problem+json"), reproduce
        body = response.json()
        assert body["status"] == response.status_code, reproduce
        assert body["errors"], (response.text[:300], reproduce)
        assert all(isinstance(e["field"], str) and e["field"] and e["reason"] for e in body["errors"]), reproduce


@random_phases.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_random_requests(case: schemathesis.Case) -> None:
    _check(case)


@coverage_phase.parametrize()
@settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_coverage_requests(case: schemathesis.Case) -> None:
    _check(case)
