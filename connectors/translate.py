"""The translator seam: build a platform's HTTP requests from our decision, read its answers. No I/O.

Like prebid-server's adapters (``MakeRequests`` / ``MakeBids``): everything platform-specific lives in a
translator, and the pipeline in ``base.py`` is the same for all platforms.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from .errors import MalformedResponse
from .model import BidDecision
from .transport import PlatformRequest, PlatformResponse


class Usage(msgspec.Struct, frozen=True):
    """How much of the platform's own quota we have used (0-100) and how long until it frees up."""

    pct: float
    retry_after: float = 0.0


class Translator(Protocol):
    platform: str

    def ping(self) -> PlatformRequest:
        """A cheap read that proves the credentials work (``connect()``)."""
        ...

    def requests(self, decision: BidDecision) -> list[PlatformRequest]:
        """The calls that carry out ``decision``, in order. The one that lets the platform spend money
        comes last, so that a failure part-way never leaves spendable money unbooked."""
        ...

    def check(self, response: PlatformResponse) -> None:
        """Raise the typed ``ConnectorError`` that an error answer stands for; return for a good one."""
        ...

    def parse(self, response: PlatformResponse) -> str:
        """The platform's reference for what changed; raises a ``ConnectorError`` for an error answer."""
        ...

    def usage(self, response: PlatformResponse) -> Usage | None:
        """Quota use the platform reports in headers, when it does."""
        ...


def json_object(platform: str, response: PlatformResponse) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(response.body)
    except msgspec.DecodeError as exc:
        raise MalformedResponse(platform, f"body is not JSON: {exc}", response.status) from exc
    if not isinstance(body, dict):
        raise MalformedResponse(platform, f"body is a JSON {type(body).__name__}, expected an object",
                                response.status)
    return body


def field(platform: str, obj: object, path: str, kind: type | tuple[type, ...], status: int) -> Any:
    """``obj`` followed along a dotted ``path`` ("results.0.resourceName"), type-checked."""
    cur: Any = obj
    for part in path.split("."):
        if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise MalformedResponse(platform, f"missing `$.{path}`", status)
    if not isinstance(cur, kind) or isinstance(cur, bool) and bool not in _as_tuple(kind):
        raise MalformedResponse(platform, f"`$.{path}` is {type(cur).__name__}, expected {_names(kind)}",
                                status)
    return cur


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def cents(micros: int) -> int:
    """Micros to whole cents, rounding down: a cap or budget must never exceed what we decided."""
    return micros // 10_000
