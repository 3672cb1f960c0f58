"""Typed errors of the connectors. Every failed ``place_bid`` raises one of these; none books spend.

    ConnectorError                 anything a connector refuses or cannot do
     ├── ConfigError               unknown kind, unknown option, missing credential
     ├── BadDecision               a decision no platform request can carry (zero bid, oversize text)
     ├── BudgetVeto                the shield's budget refused the amount; no call was made
     ├── RateLimited               our own limiter refused; ``retry_after`` seconds until a call may go
     │    └── Throttled            the platform throttles us (or is about to): ``code`` and ``retry_after``
     ├── PlatformError             the platform answered with an error: ``code`` and HTTP ``status``
     │    ├── PlatformTimeout      no answer within the timeout
     │    └── MalformedResponse    an answer we cannot read
     └── BreakerOpen               the circuit breaker is open; used inside the pipeline, which turns it
                                   into a ``source="fallback"`` result instead of raising it

Messages name the platform and what was wrong, e.g. ``meta: throttled (code 17), retry in 300 s``.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every connector error; ``platform`` says whose call it was."""

    def __init__(self, platform: str, message: str) -> None:
        super().__init__(f"{platform}: {message}")
        self.platform = platform


class ConfigError(ConnectorError):
    pass


class BadDecision(ConnectorError):
    pass


class BudgetVeto(ConnectorError):
    def __init__(self, platform: str, amount_micros: int, detail: str) -> None:
        super().__init__(platform, f"budget veto for ${amount_micros / 1e6:,.2f}: {detail}")
        self.amount_micros = amount_micros


class RateLimited(ConnectorError):
    def __init__(self, platform: str, retry_after: float, detail: str = "rate limit reached") -> None:
        super().__init__(platform, f"{detail}, retry in {retry_after:g} s")
        self.retry_after = retry_after


class Throttled(RateLimited):
    def __init__(self, platform: str, code: int | str, retry_after: float, detail: str = "") -> None:
        what = f"throttled (code {code})" + (f": {detail}" if detail else "")
        super().__init__(platform, retry_after, what)
        self.code = code


class PlatformError(ConnectorError):
    def __init__(self, platform: str, code: int | str, message: str, status: int | None = None) -> None:
        where = f" (HTTP {status})" if status is not None else ""
        super().__init__(platform, f"error {code}{where}: {message}")
        self.code = code
        self.status = status


class PlatformTimeout(PlatformError):
    def __init__(self, platform: str, timeout: float) -> None:
        super().__init__(platform, "timeout", f"no answer within {timeout:g} s")


class MalformedResponse(PlatformError):
    def __init__(self, platform: str, detail: str, status: int | None = None) -> None:
        super().__init__(platform, "malformed", detail, status)


class BreakerOpen(ConnectorError):
    def __init__(self, platform: str, state: str) -> None:
        super().__init__(platform, f"circuit breaker {state}: platform not called, no fallback history")
        self.state = state
