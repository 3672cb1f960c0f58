"""Signed webhooks: the Standard Webhooks signature, receiver verification, retried delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from control.clock import FakeClock
from control.webhooks import (
    Attempt,
    Deliverer,
    DeliveryResult,
    RetryPolicy,
    Subscription,
    VerificationError,
    WebhookError,
    encode_event,
    new_secret,
    sign,
    sign_headers,
    verify,
)

# The test vector published with the Standard Webhooks reference libraries (also Svix's own tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

T = TypeVar("T")
NOW = 1_767_225_600.0
SECRET = new_secret()


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG


def test_verify_accepts_the_test_vector() -> None:
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": VECTOR_SIG}
    assert verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TS + 10) is None  # raises when it refuses


def test_verify_accepts_any_matching_signature_and_any_header_case() -> None:
    sig = sign(SECRET, "msg_1", int(NOW), b"{}")
    headers = {"Webhook-Id": "msg_1", "WEBHOOK-TIMESTAMP": str(int(NOW)),
               "webhook-signature": f"v1,bm9wZQ== {sig}"}
    assert verify(SECRET, headers, b"{}", now=NOW) is None  # raises when it refuses


def test_verify_works_with_httpx_headers() -> None:
    assert verify(SECRET, httpx.Headers(sign_headers(SECRET, "msg_1", int(NOW), b"{}")), b"{}", now=NOW) is None


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda h, b: (h, b + b" "), "bad_signature"),
    (lambda h, b: ({**h, "webhook-id": "msg_2"}, b), "bad_signature"),
    (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), "bad_signature"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing_header"),
    (lambda h, b: ({**h, "webhook-timestamp": "yesterday"}, b), "bad_timestamp"),
])
def test_verify_rejects_tampering(mutate: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
                                  reason: str) -> None:
    headers, body = mutate(sign_headers(SECRET, "msg_1", int(NOW), b'{"a":1}'), b'{"a":1}')
    with pytest.raises(VerificationError) as err:
        verify(SECRET, headers, body, now=NOW)
    assert err.value.reason == reason


def test_verify_rejects_a_wrong_secret() -> None:
    with pytest.raises(VerificationError, match="no webhook-signature entry matches"):
        verify(new_secret(), sign_headers(SECRET, "msg_1", int(NOW), b"{}"), b"{}", now=NOW)


def test_verify_rejects_replays_older_than_five_minutes() -> None:
    headers = sign_headers(SECRET, "msg_1", int(NOW), b"{}")
    verify(SECRET, headers, b"{}", now=NOW + 300)
    with pytest.raises(VerificationError) as err:
        verify(SECRET, headers, b"{}", now=NOW + 301)
    assert err.value.reason == "too_old"


def test_verify_rejects_timestamps_far_in_the_future() -> None:
    headers = sign_headers(SECRET, "msg_1", int(NOW) + 301, b"{}")
    with pytest.raises(VerificationError) as err:
        verify(SECRET, headers, b"{}", now=NOW)
    assert err.value.reason == "too_new"


def test_a_malformed_whsec_secret_is_an_error() -> None:
    with pytest.raises(WebhookError, match="base64"):
        sign("whsec_not base64!", "m", 1, b"")


def test_event_body_has_type_timestamp_and_data() -> None:
    body = json.loads(encode_event("rule.fired", {"rule_id": "r1"}, NOW))
    assert body == {"type": "rule.fired", "timestamp": "2026-01-01T00:00:00Z", "data": {"rule_id": "r1"}}


def test_unknown_event_kinds_are_refused() -> None:
    with pytest.raises(WebhookError, match="unknown event kind 'campaign.deleted'"):
        encode_event("campaign.deleted", {}, NOW)


def test_subscription_filters_event_kinds() -> None:
    sub = Subscription("s1", "https://x", ["budget.alert"], SECRET)
    assert sub.wants("budget.alert") and not sub.wants("rule.fired")
    assert Subscription("s2", "https://x", ["*"], SECRET).wants("rule.fired")
    assert not Subscription("s3", "https://x", ["*"], SECRET, active=False).wants("rule.fired")


def test_backoff_is_exponential_capped_and_honours_retry_after() -> None:
    p = RetryPolicy(base_delay=1, factor=2, max_delay=30)
    assert [p.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 16, 30]
    assert p.delay(1, retry_after=12) == 12
    assert p.delay(1, retry_after=3600) == 30


class Log:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)


class Harness:
    """A receiver scripted by a list of answers (a status code, or an exception to raise)."""

    def __init__(self, answers: list[int | Exception]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.clock = FakeClock(NOW)
        self.slept: list[float] = []
        self.log = Log()

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        # The receiver checks every delivery the way a customer would.
        verify(SECRET, request.headers, request.content, now=self.clock.now())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers={"Retry-After": "7"} if answer == 429 else {})

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)

    def run(self, coro_fn: Callable[[Deliverer], Awaitable[T]], policy: RetryPolicy | None = None) -> T:
        async def main() -> T:
            async with httpx.AsyncClient(transport=httpx.MockTransport(self.handle)) as client:
                d = Deliverer(client, self.log, self.clock, self.sleep, policy, new_id=lambda: "msg_fixed")
                return await coro_fn(d)

        return asyncio.run(main())


SUB = Subscription("sub1", "https://hooks.example/rtb", ["*"], SECRET)


def deliver(h: Harness, policy: RetryPolicy | None = None) -> DeliveryResult:
    return h.run(lambda d: d.deliver(SUB, "budget.alert", {"campaign_id": "c1"}), policy)


def test_delivery_posts_a_verifiable_signed_event() -> None:
    h = Harness([200])
    result = deliver(h)
    assert result.delivered and result.attempts == 1
    [req] = h.requests
    assert req.url == "https://hooks.example/rtb" and req.headers["webhook-id"] == "msg_fixed"
    assert json.loads(req.content)["type"] == "budget.alert"
    assert [(a.outcome, a.status_code) for a in h.log.attempts] == [("delivered", 200)]


def test_delivery_retries_5xx_429_and_network_errors_with_backoff() -> None:
    h = Harness([503, httpx.ConnectError("refused"), 429, 200])
    result = deliver(h)
    assert result.delivered and result.attempts == 4
    assert h.slept == [1.0, 2.0, 7.0]  # 429 said Retry-After: 7, longer than the 4 s backoff
    assert [a.outcome for a in h.log.attempts] == ["retry", "retry", "retry", "delivered"]
    assert h.log.attempts[1].error is not None and "ConnectError" in h.log.attempts[1].error
    assert h.log.attempts[0].next_retry_at == NOW + 1


def test_retries_keep_the_id_and_sign_a_fresh_timestamp() -> None:
    h = Harness([500, 500, 200])
    deliver(h)
    assert {r.headers["webhook-id"] for r in h.requests} == {"msg_fixed"}
    assert [int(r.headers["webhook-timestamp"]) for r in h.requests] == [NOW, NOW + 1, NOW + 3]


def test_delivery_gives_up_after_max_attempts_and_logs_each() -> None:
    h = Harness([500] * 3)
    result = deliver(h, RetryPolicy(max_attempts=3))
    assert not result.delivered and result.status_code == 500
    assert [(a.attempt, a.outcome) for a in h.log.attempts] == [(1, "retry"), (2, "retry"), (3, "failed")]
    assert h.log.attempts[-1].next_retry_at is None


def test_a_4xx_other_than_429_is_not_retried() -> None:
    h = Harness([410])
    result = deliver(h)
    assert (result.delivered, result.attempts, result.error) == (False, 1, "HTTP 410")
    assert h.slept == []


def test_publish_delivers_to_every_subscription_that_wants_the_kind() -> None:
    h = Harness([200, 200])
    subs = [SUB, Subscription("s2", "https://b.example/h", ["rule.fired"], SECRET),
            Subscription("s3", "https://c.example/h", ["budget.alert"], SECRET)]
    results = h.run(lambda d: d.publish(subs, "budget.alert", {}))
    assert len(results) == 2
    assert sorted(str(r.url) for r in h.requests) == ["https://c.example/h", "https://hooks.example/rtb"]
