"""The HTTP operations: thin handlers over ``Control``, and the table that makes routes and OpenAPI."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from starlette.responses import Response

from control import abtest, reports, rules
from control.api import Ctx, Endpoint, Param
from control.campaigns import CURSOR
from control.errors import BadRequest, NotFound, ValidationFailed, decode
from control.schemas import (
    AbTest,
    AbTestIn,
    Assignment,
    BidderSnapshot,
    BidResultIn,
    Campaign,
    CampaignCreate,
    CampaignList,
    CampaignPatch,
    ConversionIn,
    ErasureOut,
    ExecuteIn,
    ExecuteOut,
    OptimizeIn,
    OptimizeOut,
    Performance,
    PortfolioIn,
    PortfolioOut,
    Recorded,
    RuleIn,
    RuleList,
    RuleOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from control.webhooks import EVENT_KINDS, Attempt

STATUS = ("draft", "active", "paused", "failed", "archived")
DATES = (
    Param("start_date", format="date", description="YYYY-MM-DD, inclusive"),
    Param("end_date", format="date", description="YYYY-MM-DD, inclusive"),
)


def _date(ctx: Ctx, name: str) -> Any:
    raw = ctx.query.get(name)
    if raw is None:
        return None
    try:
        return reports.parse_date(raw, name)
    except reports.ReportError as exc:
        raise BadRequest(str(exc), field=name) from exc


# -- campaigns ---------------------------------------------------------------------------------------


async def create_campaign(ctx: Ctx) -> Campaign:
    return ctx.svc.create_campaign(ctx.body)


async def list_campaigns(ctx: Ctx) -> CampaignList:
    items, cursor = ctx.svc.store.page(ctx.query["status"], ctx.query["limit"] or 50, ctx.query["cursor"])
    return CampaignList(items, cursor)


async def get_campaign(ctx: Ctx) -> Campaign:
    return ctx.svc.store.get(ctx.path["campaign_id"])


async def update_campaign(ctx: Ctx) -> Campaign:
    return ctx.svc.manage_campaign(ctx.path["campaign_id"], ctx.body)


async def delete_campaign(ctx: Ctx) -> Campaign:
    return ctx.svc.store.archive(ctx.path["campaign_id"])


async def get_performance(ctx: Ctx) -> Performance:
    return ctx.svc.performance(ctx.path["campaign_id"], _date(ctx, "start_date"), _date(ctx, "end_date"))


async def optimize_campaign(ctx: Ctx) -> OptimizeOut:
    return ctx.svc.optimize_campaign(ctx.path["campaign_id"], ctx.body.optimization_type)


async def optimize_portfolio(ctx: Ctx) -> PortfolioOut:
    return ctx.svc.optimize_portfolio(ctx.body)


async def bidder_campaigns(ctx: Ctx) -> Response:
    version = ctx.svc.store.version()
    etag = f'"{version}"'
    if etag in [t.strip() for t in ctx.request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    version, body = ctx.svc.store.snapshot_json()
    return Response(body, 200, {"ETag": f'"{version}"', "Cache-Control": "no-cache"},
                    media_type="application/json")


# -- events ------------------------------------------------------------------------------------------


async def post_conversion(ctx: Ctx) -> Recorded:
    return Recorded(id=str(ctx.svc.record_conversion(ctx.body)))


async def post_bid_result(ctx: Ctx) -> Recorded:
    ctx.svc.record_bid_result(ctx.body)
    return Recorded(id=ctx.body.request_id)


# -- A/B tests and rules -----------------------------------------------------------------------------


async def create_ab_test(ctx: Ctx) -> AbTest:
    return ctx.svc.create_ab_test(ctx.body)


async def get_ab_test(ctx: Ctx) -> AbTest:
    return ctx.svc.get_ab_test(ctx.path["test_id"])


async def analyze_ab_test(ctx: Ctx) -> abtest.Analysis:
    return ctx.svc.analyze_ab_test(ctx.path["test_id"])


async def assign_ab_test(ctx: Ctx) -> Assignment:
    tid, unit = ctx.path["test_id"], ctx.query["unit_id"]
    return Assignment(tid, unit, ctx.svc.assign(tid, unit))


async def create_rule(ctx: Ctx) -> RuleOut:
    return ctx.svc.create_rule(ctx.body)


async def list_rules(ctx: Ctx) -> RuleList:
    return RuleList(ctx.svc.list_rules())


async def get_rule(ctx: Ctx) -> RuleOut:
    return ctx.svc.get_rule(ctx.path["rule_id"])


class FiringList(msgspec.Struct):
    firings: list[rules.Firing]


async def rule_firings(ctx: Ctx) -> FiringList:
    return FiringList(ctx.svc.firings(ctx.path["rule_id"]))


# -- reports and account -----------------------------------------------------------------------------


async def performance_report(ctx: Ctx) -> Response:
    start, end = _date(ctx, "start_date"), _date(ctx, "end_date")
    rep = ctx.svc.report(start, end, ctx.query["campaign_id"])
    if ctx.query["format"] == "csv":
        name = f"performance_{start}_{end}.csv"
        return Response(reports.to_csv(rep), 200, {"Content-Disposition": f'attachment; filename="{name}"'},
                        media_type="text/csv")
    return Response(reports.to_json(rep), 200, media_type="application/json")


async def export_account(ctx: Ctx) -> Response:
    return Response(msgspec.json.encode(ctx.svc.export_account()), 200, media_type="application/json")


async def erase_user(ctx: Ctx) -> ErasureOut:
    assert ctx.principal is not None
    return ctx.svc.erase_user(ctx.path["user_id"], ctx.principal.key_id)


# -- webhooks ------------------------------------------------------------------------------------------


def _hook_out(sub: Any, secret: bool = False) -> WebhookOut:
    return WebhookOut(sub.id, sub.url, sub.events, sub.active, sub.secret if secret else None)


async def create_webhook(ctx: Ctx) -> WebhookOut:
    body: WebhookIn = ctx.body
    for i, e in enumerate(body.events):
        if e != "*" and e not in EVENT_KINDS:
            raise ValidationFailed(f"unknown event {e!r}; expected '*' or one of {', '.join(EVENT_KINDS)}",
                                   field=f"$.events[{i}]")
    return _hook_out(ctx.svc.notifier.subscribe(body.url, body.events), secret=True)


async def list_webhooks(ctx: Ctx) -> WebhookList:
    return WebhookList([_hook_out(s) for s in ctx.svc.notifier.subscriptions()])


async def delete_webhook(ctx: Ctx) -> Response:
    if not ctx.svc.notifier.unsubscribe(ctx.path["webhook_id"]):
        raise NotFound(f"no webhook {ctx.path['webhook_id']!r}")
    return Response(status_code=204)


class DeliveryList(msgspec.Struct):
    deliveries: list[Attempt]


async def webhook_deliveries(ctx: Ctx) -> DeliveryList:
    wid = ctx.path["webhook_id"]
    if ctx.svc.notifier.get(wid) is None:
        raise NotFound(f"no webhook {wid!r}")
    return DeliveryList(list(ctx.svc.notifier.deliveries(wid)))


# -- the module facade ----------------------------------------------------------------------------------


class _CampaignRef(msgspec.Struct, forbid_unknown_fields=True):
    campaign_id: str


class _TestRef(msgspec.Struct, forbid_unknown_fields=True):
    test_id: str


class _Manage(CampaignPatch, forbid_unknown_fields=True, kw_only=True):
    campaign_id: str
    operation: Literal["update", "pause", "resume", "delete"] = "update"


_WRITE = {"create_campaign", "optimize_budget", "manage_campaign", "create_ab_test", "create_rule"}


async def execute(ctx: Ctx) -> ExecuteOut:
    req: ExecuteIn = ctx.body
    if req.action in _WRITE:
        assert ctx.principal is not None
        ctx.principal.require("write")
    raw = msgspec.json.encode(req.parameters)
    svc = ctx.svc

    def params(t: type[Any]) -> Any:
        try:
            return decode(raw, t)
        except ValidationFailed as exc:
            exc.details["field"] = "$.parameters" + str(exc.details.get("field", "$"))[1:]
            raise

    result: Any
    if req.action == "create_campaign":
        result = svc.create_campaign(params(CampaignCreate))
    elif req.action == "optimize_budget":
        result = svc.optimize_portfolio(params(PortfolioIn))
    elif req.action == "manage_campaign":
        m: _Manage = params(_Manage)
        if m.operation == "delete":
            result = svc.store.archive(m.campaign_id)
        else:
            status = {"pause": "paused", "resume": "active"}.get(m.operation, m.status)
            patch = CampaignPatch(m.monthly_budget, status,  # type: ignore[arg-type]
                                  m.target_audience, m.name)
            result = svc.manage_campaign(m.campaign_id, patch)
    elif req.action == "create_ab_test":
        result = svc.create_ab_test(params(AbTestIn))
    elif req.action == "analyze_ab_test":
        result = svc.analyze_ab_test(params(_TestRef).test_id)
    elif req.action == "create_rule":
        result = svc.create_rule(params(RuleIn))
    else:
        result = svc.store.get(params(_CampaignRef).campaign_id)
    return ExecuteOut(req.action, msgspec.Raw(msgspec.json.encode(result)), context=req.context)


# -- the table -----------------------------------------------------------------------------------------

CID = "/campaigns/{campaign_id}"
ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/campaigns", "create_campaign", create_campaign, "write", CampaignCreate, Campaign, 202,
             summary="Create a campaign (status draft); a background planner makes it active or failed"),
    Endpoint("GET", "/campaigns", "list_campaigns", list_campaigns, "read", response=CampaignList, query=(
        Param("status", enum=STATUS), Param("limit", int, minimum=1, maximum=500),
        Param("cursor", pattern=CURSOR, description="next_cursor of the previous page")),
        summary="List campaigns, oldest first, a page at a time"),
    Endpoint("GET", CID, "get_campaign", get_campaign, "read", response=Campaign, errors=(404,),
             summary="A campaign, its plan (Campaign / Ad set / Ad per platform) and its status"),
    Endpoint("PATCH", CID, "update_campaign", update_campaign, "write", CampaignPatch, Campaign,
             errors=(400, 404, 409, 422), summary="Change the budget, pause or resume, retarget"),
    Endpoint("DELETE", CID, "delete_campaign", delete_campaign, "write", response=Campaign, errors=(404,),
             summary="Archive a campaign: the bidders stop it; its history stays for reports"),
    Endpoint("GET", CID + "/performance", "get_performance", get_performance, "read", response=Performance,
             query=DATES, errors=(400, 404, 422), summary="Totals, per day and per ad set"),
    Endpoint("POST", CID + "/optimize", "optimize_campaign", optimize_campaign, "write", OptimizeIn,
             OptimizeOut, errors=(400, 404, 409, 422),
             summary="Suggest optimisation actions, or apply them (auto)"),
    Endpoint("POST", "/portfolio/optimize", "optimize_portfolio", optimize_portfolio, "write", PortfolioIn,
             PortfolioOut, summary="Reallocate a total budget across active campaigns by performance"),
    Endpoint("GET", "/bidder/campaigns", "bidder_campaigns", bidder_campaigns, "read",
             response=BidderSnapshot, errors=(),
             summary="The bidders' campaign snapshot; conditional on If-None-Match (304)"),
    Endpoint("POST", "/events/conversions", "record_conversion", post_conversion, "write", ConversionIn,
             Recorded, 201, summary="Record a conversion (with its value) or a click"),
    Endpoint("POST", "/bidding/bid-result", "record_bid_result", post_bid_result, "write", BidResultIn,
             Recorded, 201, summary="Record a bid result reported by a platform"),
    Endpoint("POST", "/ab-tests", "create_ab_test", create_ab_test, "write", AbTestIn, AbTest, 201,
             summary="Create an A/B test; traffic splits by a stable hash of the user or request"),
    Endpoint("GET", "/ab-tests/{test_id}", "get_ab_test", get_ab_test, "read", response=AbTest,
             errors=(404,)),
    Endpoint("GET", "/ab-tests/{test_id}/analysis", "analyze_ab_test", analyze_ab_test, "read",
             response=abtest.Analysis, errors=(404, 422),
             summary="Chi-square test, lift with its interval, winner"),
    Endpoint("GET", "/ab-tests/{test_id}/assignment", "assign_ab_test", assign_ab_test, "read",
             response=Assignment, query=(Param("unit_id", required=True, description="user or request id"),),
             errors=(400, 404), summary="The variant a user or request belongs to"),
    Endpoint("POST", "/rules", "create_rule", create_rule, "write", RuleIn, RuleOut, 201,
             summary="A threshold rule evaluated on a schedule"),
    Endpoint("GET", "/rules", "list_rules", list_rules, "read", response=RuleList, errors=()),
    Endpoint("GET", "/rules/{rule_id}", "get_rule", get_rule, "read", response=RuleOut, errors=(404,)),
    Endpoint("GET", "/rules/{rule_id}/firings", "rule_firings", rule_firings, "read", response=FiringList,
             errors=(404,), summary="Every time the rule fired, newest first"),
    Endpoint("POST", "/execute", "execute", execute, "read", ExecuteIn, ExecuteOut,
             errors=(400, 403, 404, 409, 422),
             summary="Module facade: one action with its parameters, mapped onto the same services"),
    Endpoint("GET", "/reports/performance", "performance_report", performance_report, "read",
             response=reports.Report, media_type="application/json", query=(
                 Param("start_date", required=True, format="date"),
                 Param("end_date", required=True, format="date"),
                 Param("format", enum=("json", "csv")), Param("campaign_id")),
             summary="Performance per day, campaign and ad set as JSON or CSV"),
    Endpoint("GET", "/account/export", "export_account", export_account, "admin", errors=(),
             summary="GDPR export: everything stored for the account"),
    Endpoint("DELETE", "/users/{user_id}", "erase_user", erase_user, "admin", response=ErasureOut, errors=(),
             summary="GDPR erasure of a user's events and conversions, with an audit record"),
    Endpoint("POST", "/webhooks", "create_webhook", create_webhook, "admin", WebhookIn, WebhookOut, 201,
             summary="Subscribe a URL; the answer holds the signing secret, shown only once"),
    Endpoint("GET", "/webhooks", "list_webhooks", list_webhooks, "admin", response=WebhookList, errors=()),
    Endpoint("DELETE", "/webhooks/{webhook_id}", "delete_webhook", delete_webhook, "admin", status=204,
             errors=(404,)),
    Endpoint("GET", "/webhooks/{webhook_id}/deliveries", "webhook_deliveries", webhook_deliveries, "admin",
             response=DeliveryList, errors=(404,), summary="Delivery attempts, newest first"),
]
