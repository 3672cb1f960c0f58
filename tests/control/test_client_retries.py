"""control.client.Client against scripted answers: what it retries, how long it waits, when it stops."""

from __future__ import annotations

import httpx
import pytest

from control.client import Client, RequestFailed, Unavailable
from shield.clock import FakeClock


class Script:
    """Answers requests from a list of (status, json) in turn and records what was asked."""

    def __init__(self, *answers: tuple[int, dict]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.answers.pop(0) if self.answers else (200, {"ok": True})
        if status == 0:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status, json=body)


def error(status: int, type_: str, **details) -> tuple[int, dict]:
    return status, {"status": "error", "error": {"code": status, "type": type_, "message": type_,
                                                 "details": details}}


def client(script: Script, **kw) -> tuple[Client, list[float]]:
    slept: list[float] = []
    c = Client("http://control", "rtbk_x_y", transport=httpx.MockTransport(script), sleep=slept.append,
               clock=FakeClock(), **kw)
    return c, slept


def test_429_waits_the_retry_after_the_server_gave():
    script = Script(error(429, "rate_limited", retry_after=2.5), (200, {"campaign_id": "c1"}))
    c, slept = client(script)
    assert c.get_campaign("c1") == {"campaign_id": "c1"}
    assert slept == [2.5]


def test_5xx_and_network_errors_back_off_exponentially():
    script = Script(error(503, "unavailable"), (0, {}), error(500, "internal_error"), (200, {"campaigns": []}))
    c, slept = client(script, backoff=0.5)
    assert c.list_campaigns(status="active") == {"campaigns": []}
    assert slept == [0.5, 1.0, 2.0]
    assert script.requests[0].url.params["status"] == "active"


def test_a_retried_post_keeps_its_idempotency_key():
    script = Script(error(502, "bad_gateway"), (202, {"campaign_id": "c1", "status": "draft"}))
    c, _ = client(script)
    c.create_campaign({"business_goal": "x", "monthly_budget": 1})
    keys = {r.headers["idempotency-key"] for r in script.requests}
    assert len(script.requests) == 2 and len(keys) == 1


def test_client_errors_are_not_retried_and_carry_the_envelope():
    script = Script(error(422, "validation_error", field="$.monthly_budget"))
    c, slept = client(script)
    with pytest.raises(RequestFailed) as exc:
        c.create_campaign({"business_goal": "x", "monthly_budget": -1})
    assert exc.value.status == 422 and exc.value.details == {"field": "$.monthly_budget"}
    assert slept == [] and len(script.requests) == 1


def test_retries_run_out_as_unavailable():
    script = Script(*[error(500, "internal_error")] * 3)
    c, slept = client(script, max_retries=2)
    with pytest.raises(Unavailable):
        c.get_campaign("c1")
    assert len(script.requests) == 3 and slept == [0.5, 1.0]


def test_breaker_opens_after_repeated_failures_and_stops_calling():
    script = Script(*[(0, {})] * 10)
    c, _ = client(script, max_retries=0)
    for _ in range(5):
        with pytest.raises(Unavailable):
            c.get_campaign("c1")
    calls = len(script.requests)
    with pytest.raises(Unavailable, match="circuit"):
        c.get_campaign("c1")
    assert len(script.requests) == calls
