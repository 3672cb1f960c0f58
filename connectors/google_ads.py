"""Google Ads (REST): target ROAS with a CPC ceiling on the campaign, then the campaign budget.

A decision becomes two mutates on ``customers/{id}``: ``campaigns:mutate`` sets ``targetRoas`` (LTV / bid)
with ``cpcBidCeilingMicros`` and custom parameters carrying the LTV and its explanation;
``campaignBudgets:mutate`` then sets ``amountMicros`` (int64 fields travel as JSON strings). The budget
goes last because only it lets Google spend. Quota errors (``RESOURCE_EXHAUSTED``) carry a retry delay,
which becomes ``Throttled.retry_after``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import BadDecision, PlatformError, Throttled
from .model import BidDecision
from .translate import Usage, field, json_object
from .transport import PlatformRequest, PlatformResponse

PLATFORM = "google_ads"
BASE_URL = "https://googleads.googleapis.com"
VERSION = "v19"
QUOTA_RETRY_DEFAULT_S = 30.0  # Google's advice when a quota error names no delay
CUSTOM_PARAM_MAX = 250  # characters in a custom parameter value


class GoogleAds:
    platform = PLATFORM

    def __init__(self, customer_id: str, developer_token: str, access_token: str = "",
                 login_customer_id: str = "", version: str = VERSION) -> None:
        self.customer_id = customer_id.replace("-", "")
        self.prefix = f"/{version}/customers/{self.customer_id}"
        self.headers = {"developer-token": developer_token}
        if access_token:
            self.headers["authorization"] = f"Bearer {access_token}"
        if login_customer_id:
            self.headers["login-customer-id"] = login_customer_id.replace("-", "")
        self.version = version

    def ping(self) -> PlatformRequest:
        return PlatformRequest("GET", f"/{self.version}/customers:listAccessibleCustomers", self.headers)

    def requests(self, decision: BidDecision) -> list[PlatformRequest]:
        if decision.bid_micros <= 0:
            raise BadDecision(PLATFORM, f"bid must be > 0 to derive a target ROAS, got {decision.bid_micros}")
        why = msgspec.json.encode(decision.explanation).decode()
        if len(why) > CUSTOM_PARAM_MAX:
            raise BadDecision(PLATFORM, f"explanation is {len(why)} characters of JSON; a custom parameter "
                                        f"holds at most {CUSTOM_PARAM_MAX}")
        campaign = f"customers/{self.customer_id}/campaigns/{decision.campaign_id}"
        budget = f"customers/{self.customer_id}/campaignBudgets/{decision.budget_id or decision.campaign_id}"
        roas = round(decision.ltv_micros / decision.bid_micros, 4)
        campaign_op = {
            "update": {
                "resourceName": campaign,
                "targetRoas": {"targetRoas": roas, "cpcBidCeilingMicros": str(decision.cap_micros)},
                "urlCustomParameters": [
                    {"key": "ltv", "value": f"{decision.ltv_micros / 1e6:.2f}"},
                    {"key": "ltvwhy", "value": why},
                ],
            },
            "updateMask": "target_roas.target_roas,target_roas.cpc_bid_ceiling_micros,url_custom_parameters",
        }
        budget_op = {
            "update": {"resourceName": budget, "amountMicros": str(decision.bid_micros)},
            "updateMask": "amount_micros",
        }
        return [
            PlatformRequest("POST", f"{self.prefix}/campaigns:mutate", self.headers,
                            json={"operations": [campaign_op]}),
            PlatformRequest("POST", f"{self.prefix}/campaignBudgets:mutate", self.headers,
                            json={"operations": [budget_op]}),
        ]

    def check(self, response: PlatformResponse) -> None:
        if response.status < 400:
            return
        body = json_object(PLATFORM, response)
        err = field(PLATFORM, body, "error", dict, response.status)
        status = str(err.get("status", response.status))
        message = str(err.get("message", ""))
        failures = [e for d in err.get("details") or [] if isinstance(d, dict) for e in d.get("errors") or []]
        if status == "RESOURCE_EXHAUSTED" or any(_quota(e) for e in failures):
            raise Throttled(PLATFORM, "RESOURCE_EXHAUSTED", _retry_delay(err), message)
        code = _error_code(failures[0]) if failures else status
        raise PlatformError(PLATFORM, code, message or "no message", response.status)

    def parse(self, response: PlatformResponse) -> str:
        self.check(response)
        body = json_object(PLATFORM, response)
        return str(field(PLATFORM, body, "results.0.resourceName", str, response.status))

    def usage(self, response: PlatformResponse) -> Usage | None:
        return None


def _quota(error: dict[str, Any]) -> bool:
    code = error.get("errorCode")
    return isinstance(code, dict) and code.get("quotaError") in ("RESOURCE_EXHAUSTED",
                                                                 "RESOURCE_TEMPORARILY_EXHAUSTED")


def _error_code(error: dict[str, Any]) -> str:
    code = error.get("errorCode")
    if isinstance(code, dict) and code:
        kind, value = next(iter(code.items()))
        return f"{kind}.{value}"
    return "UNKNOWN"


def _retry_delay(err: dict[str, Any]) -> float:
    """The delay from ``quotaErrorDetails.retryDelay`` or a ``google.rpc.RetryInfo`` detail."""
    for detail in err.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if "retryDelay" in detail:
            return _duration(detail["retryDelay"])
        for e in detail.get("errors") or []:
            quota = (e.get("details") or {}).get("quotaErrorDetails") or {}
            if "retryDelay" in quota:
                return _duration(quota["retryDelay"])
    return QUOTA_RETRY_DEFAULT_S


def _duration(value: object) -> float:
    """A protobuf Duration in JSON ("30s", "1.5s"); anything else gets the default delay."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(0.0, float(value[:-1]))
        except ValueError:
            pass
    return QUOTA_RETRY_DEFAULT_S
