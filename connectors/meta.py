"""Meta Marketing API: an ad set's bid cap and daily budget, optimising for value.

A decision is one ``POST /{version}/{ad_set_id}`` (our ``campaign_id`` is the ad set) with
``optimization_goal=VALUE``, ``bid_strategy=LOWEST_COST_WITH_BID_CAP``, and ``bid_amount`` /
``daily_budget`` in cents of the account currency.

Meta throttles per app, per user, per ad account and per business use case, and reports how close we are
in ``X-App-Usage``, ``X-Ad-Account-Usage`` and ``X-Business-Use-Case-Usage``; ``usage()`` turns them into a
percentage so the pipeline can back off *before* Meta blocks us. Error codes 4, 17, 613 and 80000-80014
mean we were throttled.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import BadDecision, PlatformError, Throttled
from .model import BidDecision
from .translate import Usage, cents, field, json_object
from .transport import PlatformRequest, PlatformResponse

PLATFORM = "meta"
BASE_URL = "https://graph.facebook.com"
VERSION = "v21.0"
THROTTLE_CODES = frozenset({4, 17, 613, *range(80000, 80015)})
THROTTLE_RETRY_DEFAULT_S = 60.0  # when a throttle names no time to regain access


class Meta:
    platform = PLATFORM

    def __init__(self, business_id: str, access_token: str, version: str = VERSION) -> None:
        self.business_id = business_id
        self.version = version
        self.headers = {"authorization": f"Bearer {access_token}"}

    def ping(self) -> PlatformRequest:
        return PlatformRequest("GET", f"/{self.version}/{self.business_id}", self.headers,
                               params={"fields": "id,name"})

    def requests(self, decision: BidDecision) -> list[PlatformRequest]:
        bid, budget = cents(decision.cap_micros), cents(decision.bid_micros)
        if bid < 1 or budget < 1:
            raise BadDecision(PLATFORM, "bid_amount and daily_budget must be at least 1 cent")
        form = {
            "optimization_goal": "VALUE",
            "bid_strategy": "LOWEST_COST_WITH_BID_CAP",
            "bid_amount": str(bid),
            "daily_budget": str(budget),
        }
        return [PlatformRequest("POST", f"/{self.version}/{decision.campaign_id}", self.headers, form=form)]

    def check(self, response: PlatformResponse) -> None:
        if response.status < 400:
            return
        body = json_object(PLATFORM, response)
        err = field(PLATFORM, body, "error", dict, response.status)
        code, message = err.get("code"), str(err.get("message", "no message"))
        if isinstance(code, int) and code in THROTTLE_CODES:
            usage = self.usage(response)
            retry = usage.retry_after if usage and usage.retry_after > 0 else THROTTLE_RETRY_DEFAULT_S
            raise Throttled(PLATFORM, code, retry, message)
        sub = err.get("error_subcode")
        label: int | str = code if isinstance(code, int) else "unknown"
        raise PlatformError(PLATFORM, label, message + (f" (subcode {sub})" if sub else ""), response.status)

    def parse(self, response: PlatformResponse) -> str:
        self.check(response)
        body = json_object(PLATFORM, response)
        if field(PLATFORM, body, "success", bool, response.status) is not True:
            raise PlatformError(PLATFORM, "not_applied", "Meta answered success=false", response.status)
        return str(body.get("id", ""))

    def usage(self, response: PlatformResponse) -> Usage | None:
        readings: list[Usage] = []
        app = _header(response, "x-app-usage")
        if isinstance(app, dict):
            readings.append(Usage(_pct(app)))
        account = _header(response, "x-ad-account-usage")
        if isinstance(account, dict):
            reset = _num(account.get("reset_time_duration"))
            readings.append(Usage(_num(account.get("acc_id_util_pct")), reset))
        buc = _header(response, "x-business-use-case-usage")
        if isinstance(buc, dict):
            for entries in buc.values():
                for e in entries if isinstance(entries, list) else []:
                    if isinstance(e, dict):
                        # estimated_time_to_regain_access is in minutes
                        readings.append(Usage(_pct(e), 60 * _num(e.get("estimated_time_to_regain_access"))))
        if not readings:
            return None
        return Usage(max(u.pct for u in readings), max(u.retry_after for u in readings))


def _header(response: PlatformResponse, name: str) -> Any:
    # Usage headers are advice: one we cannot read is ignored rather than failing a good call.
    raw = response.headers.get(name)
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _pct(entry: dict[str, Any]) -> float:
    return max(_num(entry.get(k)) for k in ("call_count", "total_cputime", "total_time"))
