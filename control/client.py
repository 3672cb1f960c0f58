"""Python client of the control plane's API.

Retries what is worth retrying: 429 after the server's ``retry_after``, 5xx and network errors with
exponential backoff. Every POST carries an ``Idempotency-Key`` (one per logical call, reused by its
retries), so a retried create never makes two campaigns. A circuit breaker (``shield``) stops
calling a server that keeps failing, so callers fail fast instead of queueing up behind timeouts.

    ClientError               anything this client raises
    ├── RequestFailed         the server answered an error: .status, .type, .message, .details
    └── Unavailable           network errors or 5xx after the retries, or the breaker is open
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from shield.breaker import CircuitBreaker
from shield.clock import Clock


class ClientError(Exception):
    pass


class RequestFailed(ClientError):
    def __init__(self, status: int, type: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status} {type}: {message}")
        self.status = status
        self.type = type
        self.message = message
        self.details = details


class Unavailable(ClientError):
    pass


def _failure(r: httpx.Response) -> RequestFailed:
    try:
        err = msgspec.json.decode(r.content)["error"]
        return RequestFailed(r.status_code, err["type"], err["message"], err.get("details") or {})
    except (msgspec.DecodeError, KeyError, TypeError):
        return RequestFailed(r.status_code, "http_error", r.text[:200] or r.reason_phrase, {})


class Client:
    def __init__(self, base_url: str, api_key: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 10.0, max_retries: int = 4, backoff: float = 0.5, max_backoff: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Clock | None = None,
                 breaker: CircuitBreaker | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", transport=transport,
                                  timeout=timeout, headers={"Authorization": f"Bearer {api_key}"})
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.breaker = breaker or CircuitBreaker(
            "control-api", clock, failure_threshold=5, reset_timeout=30.0, slow_call_seconds=timeout + 1,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the transport loop -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                idempotency_key: str | None = None) -> httpx.Response:
        headers = {}
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or f"cli-{secrets.token_hex(12)}"
        content = msgspec.json.encode(json) if json is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            token = self.breaker.allow()
            if not token:
                raise Unavailable(f"control plane circuit is {self.breaker.state.value}; not calling {path}")
            started = time.monotonic()
            try:
                r = self._http.request(method, path, content=content, params=params, headers=headers)
            except httpx.TransportError as exc:
                self.breaker.record_failure(token)
                if attempt >= self.max_retries:
                    raise Unavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
                wait = self._backoff(attempt)
            else:
                if r.status_code >= 500:
                    self.breaker.record_failure(token)
                else:
                    self.breaker.record_success(token, time.monotonic() - started)
                if r.status_code < 400:
                    return r
                if r.status_code == 429 and attempt < self.max_retries:
                    wait = self._retry_after(r, attempt)
                elif r.status_code >= 500 and attempt < self.max_retries:
                    wait = self._backoff(attempt)
                elif r.status_code >= 500:
                    raise Unavailable(f"{method} {path}: {_failure(r)}") from _failure(r)
                else:
                    raise _failure(r)
            attempt += 1
            self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2**attempt))

    def _retry_after(self, r: httpx.Response, attempt: int) -> float:
        try:
            return float(msgspec.json.decode(r.content)["error"]["details"]["retry_after"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            pass
        try:
            return float(r.headers["retry-after"])
        except (KeyError, ValueError):
            return self._backoff(attempt)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return msgspec.json.decode(self.request(method, path, **kw).content)

    # -- the API ---------------------------------------------------------------------------------------

    def create_campaign(self, spec: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """Accepted as ``draft``; poll ``get_campaign`` (or ``wait_until_planned``) until it is active."""
        result: dict[str, Any] = self._json("POST", "/campaigns", json=spec, idempotency_key=idempotency_key)
        return result

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/campaigns/{campaign_id}")
        return result

    def wait_until_planned(self, campaign_id: str, timeout: float = 30.0,
                           interval: float = 0.2) -> dict[str, Any]:
        """Poll until the campaign leaves ``draft``; returns it, ``active`` or ``failed`` with its reason."""
        waited = 0.0
        while True:
            c = self.get_campaign(campaign_id)
            if c["status"] != "draft" or waited >= timeout:
                return c
            self.sleep(interval)
            waited += interval

    def list_campaigns(self, status: str | None = None, limit: int | None = None,
                       cursor: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/campaigns",
                                            params={"status": status, "limit": limit, "cursor": cursor})
        return result

    def update_campaign(self, campaign_id: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._json("PATCH", f"/campaigns/{campaign_id}", json=changes)
        return result

    def get_performance(self, campaign_id: str, start_date: str | None = None,
                        end_date: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/campaigns/{campaign_id}/performance",
                                            params={"start_date": start_date, "end_date": end_date})
        return result

    def optimize_campaign(self, campaign_id: str, optimization_type: str = "suggest") -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", f"/campaigns/{campaign_id}/optimize",
                                            json={"optimization_type": optimization_type})
        return result

    def export_performance_report(self, start_date: str, end_date: str, format: str = "json",
                                  campaign_id: str | None = None) -> Any:
        """The report as a dict (``json``) or as CSV text (``csv``)."""
        r = self.request("GET", "/reports/performance", params={
            "start_date": start_date, "end_date": end_date, "format": format, "campaign_id": campaign_id})
        return r.text if format == "csv" else msgspec.json.decode(r.content)

    def export_account_data(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/account/export")
        return result
