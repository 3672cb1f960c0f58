"""Auth, rate limits, the error envelope and Idempotency-Key, through HTTP."""

from __future__ import annotations

import pytest

from control.auth import KeyStore

pytestmark = pytest.mark.anyio
GOAL = {"business_goal": "more sales", "monthly_budget": 100, "advertiser_domain": "a.example"}


def assert_envelope(r, status: int, type_: str) -> dict:
    assert r.status_code == status
    body = r.json()
    assert body["status"] == "error"
    assert set(body["error"]) == {"code", "type", "message", "details"}
    assert body["error"]["code"] == status and body["error"]["type"] == type_
    assert body["error"]["message"]
    return body["error"]


async def test_missing_or_unknown_key_is_401(h):
    r = await h.http.get("/api/v1/campaigns")
    assert_envelope(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    forged = h.keys["admin"][:-4] + "AAAA"
    r = await h.http.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {forged}"})
    assert_envelope(r, 401, "unauthorized")
    r = await h.http.get("/api/v1/campaigns", headers={"Authorization": "Basic abc"})
    assert_envelope(r, 401, "unauthorized")


async def test_key_without_the_scope_is_403(h):
    r = await h.request("POST", "/campaigns", scope="read", json=GOAL)
    err = assert_envelope(r, 403, "forbidden")
    assert err["details"] == {"required_scope": "write", "key_scope": "read"}
    assert (await h.request("GET", "/account/export", scope="write")).status_code == 403
    assert (await h.request("GET", "/account/export", scope="admin")).status_code == 200


async def test_keys_are_stored_only_as_hashes(h):
    rows = h.control.db.query("SELECT * FROM api_keys")
    stored = " ".join(str(v) for r in rows for v in dict(r).values())
    for key in h.keys.values():
        secret = key.split("_", 2)[2]  # rtbk_<id>_<secret>; the secret may hold "_" itself
        assert key not in stored and secret not in stored


async def test_validation_error_names_the_field(h):
    r = await h.request("POST", "/campaigns", json={**GOAL, "monthly_budget": "lots"})
    err = assert_envelope(r, 422, "validation_error")
    assert err["details"]["field"] == "$.monthly_budget"
    r = await h.request("POST", "/campaigns", json={**GOAL, "target_audience": {"countries": ["us"]}})
    assert assert_envelope(r, 422, "validation_error")["details"]["field"] == "$.target_audience.countries[0]"
    r = await h.request("POST", "/campaigns", content=b"{not json")
    assert_envelope(r, 400, "bad_request")


async def test_unknown_things_use_the_envelope_too(h):
    assert_envelope(await h.request("GET", "/campaigns/cmp_nope"), 404, "not_found")
    assert_envelope(await h.http.get("/api/v1/nothing-here"), 404, "not_found")
    assert_envelope(await h.http.put("/api/v1/campaigns"), 405, "method_not_allowed")
    r = await h.request("GET", "/campaigns", params={"status": "sleeping"})
    assert assert_envelope(r, 400, "bad_request")["details"] == {"field": "status"}


async def test_rate_limit_answers_429_with_retry_after(make_harness, clock):
    h = make_harness(settings={"rate": 1.0, "burst": 2})
    for _ in range(2):
        assert (await h.request("GET", "/campaigns")).status_code == 200
    r = await h.request("GET", "/campaigns")
    err = assert_envelope(r, 429, "rate_limited")
    assert r.headers["retry-after"] == "1"
    assert err["details"]["retry_after"] == pytest.approx(1.0)
    # Another key has its own bucket; the limited key recovers once the time has passed.
    assert (await h.request("GET", "/campaigns", scope="read")).status_code == 200
    clock.advance(1.0)
    assert (await h.request("GET", "/campaigns")).status_code == 200
    await h.http.aclose()


async def test_idempotency_key_replays_the_first_response(h):
    headers = {"Idempotency-Key": "create-42"}
    first = await h.request("POST", "/campaigns", json=GOAL, headers=headers)
    again = await h.request("POST", "/campaigns", json=GOAL, headers=headers)
    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    page = (await h.request("GET", "/campaigns")).json()
    assert len(page["campaigns"]) == 1
    other = await h.request("POST", "/campaigns", json={**GOAL, "monthly_budget": 5}, headers=headers)
    assert_envelope(other, 409, "conflict")


async def test_idempotency_keys_belong_to_one_api_key(h):
    headers = {"Idempotency-Key": "same"}
    await h.request("POST", "/campaigns", json=GOAL, headers=headers, scope="admin")
    await h.request("POST", "/campaigns", json=GOAL, headers=headers, scope="write")
    assert len((await h.request("GET", "/campaigns")).json()["campaigns"]) == 2


async def test_bootstrap_admin_key_from_settings(make_harness):
    boot = "rtbk_boot_" + "s" * 40
    h = make_harness(settings={"admin_key": boot})
    r = await h.http.get("/api/v1/account/export", headers={"Authorization": f"Bearer {boot}"})
    assert r.status_code == 200
    with pytest.raises(ValueError, match="rtb keys create"):
        KeyStore(h.control.db).add("not-a-key", "admin")
    await h.http.aclose()
