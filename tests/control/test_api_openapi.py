"""The OpenAPI document: valid OpenAPI 3.1, and the app behind it survives schemathesis."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import positive_data_acceptance

pytestmark = pytest.mark.anyio


async def test_openapi_document_is_valid_openapi_3_1(h):
    r = await h.http.get("/openapi.json")
    doc = r.json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    create = doc["paths"]["/api/v1/campaigns"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]
    assert {"business_goal", "monthly_budget"} <= set(doc["components"]["schemas"][body]["required"])
    assert {"202", "401", "403", "422", "429"} <= set(create["responses"])


@pytest.fixture
def api_schema(make_harness):
    # The test client runs the app's lifespan, so the background jobs run: they idle on real sleeps.
    h = make_harness(settings={"rate": 1e6, "burst": 10**6}, sleep=asyncio.sleep)
    schema = schemathesis.openapi.from_asgi("/openapi.json", h.app)
    key = h.keys["admin"]

    @schema.auth()
    class AdminKey:
        def get(self, case, context):
            return key

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_without_a_server_error(case):
    # Every check but positive_data_acceptance: some schema-valid requests are refused on purpose, with
    # a 4xx that names the field (an end_date before the start_date, a campaign not planned yet).
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
