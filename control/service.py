"""The control plane's services wired together, and the operations both the routes and ``/execute`` call.

``Control`` owns the store and the background work (planner, webhook outbox, bidder-event pull, rule
schedule). Each background job is also a method a test can await to run it to completion:
``planner.drain()``, ``notifier.drain()``, ``puller.pull_once()``, ``rules_tick()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec

from control import abtest, optimize, reports, rules, webhooks
from control.auth import KeyStore
from control.campaigns import CampaignStore
from control.clock import Clock, SystemClock
from control.db import Database
from control.errors import ApiError, Conflict, NotFound, ValidationFailed
from control.metrics import Metrics
from control.notify import DbDeliveryLog, Notifier
from control.planner import CopyGenerator, FallbackCopy, Planner, TemplateCopy
from control.pull import EventPuller
from control.ratelimit import KeyRateLimiter
from control.schemas import (
    AbTest,
    AbTestIn,
    AllocationOut,
    BidResultIn,
    Campaign,
    CampaignCreate,
    CampaignPatch,
    ConversionIn,
    ErasureOut,
    OptimizeAction,
    OptimizeOut,
    Performance,
    Plan,
    PortfolioIn,
    PortfolioOut,
    RuleIn,
    RuleOut,
)
from control.settings import Settings
from control.stats import Stats, campaign_of

log = logging.getLogger("control.service")
Sleep = Callable[[float], Awaitable[None]]
DAY = 86400.0


def _micros(usd: float) -> int:
    return round(usd * 1_000_000)


def _today(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def _day_start(d: dt.date) -> float:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()


def scale_bids(plan: Plan, factor: float, ad_set: str | None = None) -> Plan:
    r = msgspec.structs.replace
    return r(plan, platforms=[
        r(pp, ad_sets=[
            r(s, bid=r(s.bid, max_cpm=round(max(0.01, s.bid.max_cpm * factor), 4)))
            if ad_set in (None, s.id) else s
            for s in pp.ad_sets
        ])
        for pp in plan.platforms
    ])


def _pause_ad_sets(plan: Plan, ids: set[str], shift_to: str | None, share: float) -> Plan:
    """Pause ``ids``; ``share`` of their monthly budget moves to ad set ``shift_to``."""
    r = msgspec.structs.replace
    moved = sum(s.monthly_budget * share for pp in plan.platforms for s in pp.ad_sets if s.id in ids)
    out = []
    for pp in plan.platforms:
        sets = []
        for s in pp.ad_sets:
            if s.id in ids:
                kept = round(s.monthly_budget * (1 - share), 6) or s.monthly_budget
                s = r(s, status="paused", monthly_budget=kept, daily_budget=round(kept / 30, 6))
            elif s.id == shift_to:
                grown = round(s.monthly_budget + moved, 6)
                s = r(s, monthly_budget=grown, daily_budget=round(grown / 30, 6))
            sets.append(s)
        out.append(r(pp, ad_sets=sets, monthly_budget=round(sum(s.monthly_budget for s in sets), 6)))
    return r(plan, platforms=out)


class Control:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, copy: CopyGenerator | None = None,
                 bidder_client: httpx.AsyncClient | None = None,
                 webhook_client: httpx.AsyncClient | None = None, sleep: Sleep = asyncio.sleep,
                 retry: webhooks.RetryPolicy | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.sleep = sleep
        self.db = Database.in_dir(settings.data_dir)
        self.keys = KeyStore(self.db)
        if settings.admin_key:
            self.keys.add(settings.admin_key, "admin", "bootstrap (RTB_ADMIN_KEY)", self.clock.now())
        self.limiter = KeyRateLimiter(settings.rate, settings.burst, self.clock)
        self.metrics = Metrics()
        self._own_clients: list[httpx.AsyncClient] = []
        self.webhook_client = webhook_client or self._client()
        self.notifier = Notifier(self.db, self.clock, webhooks.Deliverer(
            self.webhook_client, DbDeliveryLog(self.db), self.clock, sleep=sleep, policy=retry,
        ))
        self.store = CampaignStore(self.db, self.clock, notify=self.notifier)
        self.planner = Planner(self.store, FallbackCopy(copy) if copy else TemplateCopy())
        self.planner.resume()
        self.stats = Stats(self.db)
        self.puller = EventPuller(
            self.db, bidder_client or self._client(), settings.bidder_url, self.clock, notify=self.notifier,
            count=lambda status: self.metrics.platform_calls.labels("bidder", status).inc(),
        )
        state = msgspec.json.decode(self.db.get_meta("rules_scheduler", "{}"), type=dict[str, Any])
        self.scheduler = rules.Scheduler(
            self.clock, last_run=state.get("last_run", {}),
            last_fired={(r, c): t for r, c, t in state.get("last_fired", [])},
        )
        self.metrics.active_rules.set(sum(r.rule.enabled for r in self.list_rules()))
        self._tasks: list[asyncio.Task[None]] = []

    def _client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient()
        self._own_clients.append(client)
        return client

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.planner.run(), name="planner"),
            asyncio.create_task(self.notifier.run(), name="webhooks"),
            asyncio.create_task(self.puller.run(self.settings.events_interval, self.sleep), name="pull"),
            asyncio.create_task(self._rules_loop(), name="rules"),
        ]

    async def stop(self) -> None:
        """Stop the background jobs; ``start()`` may run them again (a test client's lifespan does)."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    async def close(self) -> None:
        await self.stop()
        for c in self._own_clients:
            await c.aclose()
        self.db.close()

    async def _rules_loop(self) -> None:
        while True:
            try:
                await self.rules_tick()
            except Exception:
                log.exception("rule evaluation failed")
            await self.sleep(self.settings.rules_interval)

    # -- campaigns ---------------------------------------------------------------------------------

    def create_campaign(self, spec: CampaignCreate) -> Campaign:
        c = self.store.create(spec)
        self.planner.submit(c.campaign_id)
        return c

    def manage_campaign(self, campaign_id: str, patch: CampaignPatch) -> Campaign:
        return self.store.update(campaign_id, patch)

    def performance(self, campaign_id: str, start: dt.date | None, end: dt.date | None) -> Performance:
        c = self.store.get(campaign_id)
        start = start or _today(c.created_at)
        end = end or max(start, _today(self.clock.now()))
        rep = self._report(start, end, campaign_id)
        fields = {f: getattr(rep.totals, f) for f in reports.METRIC_FIELDS}
        return Performance(campaign_id=campaign_id, status=c.status, start_date=rep.start_date,
                           end_date=rep.end_date, by_day=rep.by_day, by_ad_set=rep.by_ad_set, **fields)

    def _report(self, start: dt.date, end: dt.date, campaign_id: str | None) -> reports.Report:
        if end < start:
            raise ValidationFailed(f"end_date {end} is before start_date {start}", field="end_date")
        if (end - start).days > reports.MAX_DAYS:
            raise ValidationFailed(f"a report covers at most {reports.MAX_DAYS} days", field="end_date")
        rows = self.stats.rows(_day_start(start), _day_start(end) + DAY, campaign_id)
        try:
            return reports.build(rows, start, end, campaign_id)
        except reports.ReportError as exc:
            raise ValidationFailed(str(exc), field=exc.field) from exc

    def report(self, start: dt.date, end: dt.date, campaign_id: str | None) -> reports.Report:
        return self._report(start, end, campaign_id)

    # -- events ------------------------------------------------------------------------------------

    def record_conversion(self, c: ConversionIn) -> int:
        return self.db.insert(
            "INSERT INTO conversions (ts, campaign_id, ad_set_id, creative_id, user_id, request_id, value, "
            "kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (c.ts if c.ts is not None else self.clock.now(), campaign_of(c.campaign_id),
             c.ad_set_id or (c.campaign_id if "." in c.campaign_id else ""), c.creative_id, c.user_id,
             c.request_id, c.value, c.event),
        )

    def record_bid_result(self, b: BidResultIn) -> None:
        # A platform may report the same result twice; the later report wins.
        self.db.execute(
            "INSERT INTO bid_results (request_id, status, win_price, campaign_id, ts) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (request_id) DO UPDATE SET status = excluded.status, "
            "win_price = excluded.win_price, campaign_id = excluded.campaign_id",
            (b.request_id, b.status, b.win_price if b.status == "won" else 0.0, b.campaign_id,
             self.clock.now()),
        )

    # -- optimisation ------------------------------------------------------------------------------

    def optimize_campaign(self, campaign_id: str, kind: str) -> OptimizeOut:
        c = self.store.get(campaign_id)
        if c.plan is None or c.status not in ("active", "paused"):
            raise Conflict(f"campaign {campaign_id!r} is {c.status}; only planned campaigns can be optimised",
                           status=c.status)
        ad_sets = [(s.id, s.status == "paused") for pp in c.plan.platforms for s in pp.ad_sets]
        perf = self.stats.campaign_perf(
            campaign_id, _micros(c.request.monthly_budget), ad_sets, 0.0, self.clock.now() + 1,
            c.request.target_roas, _micros(c.request.target_cpa) if c.request.target_cpa else None,
        )
        s = optimize.suggest(perf)
        applied = kind == "auto" and bool(s.actions)
        if applied:
            plan = c.plan
            paused = {a.target for a in s.actions if a.type == "pause_variant"}
            shift = next((a for a in s.actions if a.type == "shift_budget"), None)
            if paused:
                share = (shift.change_pct or 100.0) / 100 if shift else 0.0
                plan = _pause_ad_sets(plan, paused, shift.target if shift else None, share)
            for a in s.actions:
                if a.type == "adjust_bid" and a.change_pct:
                    one = None if a.target == campaign_id else a.target
                    plan = scale_bids(plan, 1 + a.change_pct / 100, one)
            self.store.set_plan(campaign_id, plan)
        actions = [OptimizeAction(a.type, a.target, a.reason, a.expected_effect, a.change_pct, applied)
                   for a in s.actions]
        message = s.message + (f" Applied {len(actions)} action(s)." if applied else "")
        return OptimizeOut(campaign_id, kind, actions, message)

    def optimize_portfolio(self, p: PortfolioIn) -> PortfolioOut:
        active = [c for c in self.store.all() if c.status == "active"]
        if not active:
            return PortfolioOut(p.total_budget, [], False, "no active campaigns to reallocate")
        now = self.clock.now()
        totals = {t.campaign_id: t for t in self.stats.window_totals(None, now - 30 * DAY, now + 1)}
        pcs = [
            optimize.PortfolioCampaign(
                c.campaign_id, _micros(c.request.monthly_budget),
                totals[c.campaign_id].spend_micros if c.campaign_id in totals else 0,
                totals[c.campaign_id].revenue_micros if c.campaign_id in totals else 0,
            )
            for c in active
        ]
        try:
            allocs = optimize.reallocate(_micros(p.total_budget), pcs, max_step=p.max_step)
        except optimize.OptimizeError as exc:
            raise ValidationFailed(str(exc), field="$") from exc
        applied = not p.dry_run
        if applied:
            for a in allocs:
                if a.after_micros > 0 and a.after_micros != a.before_micros:
                    self.store.update(a.campaign_id, CampaignPatch(monthly_budget=a.after_micros / 1e6))
        out = [AllocationOut(a.campaign_id, a.before_micros / 1e6, a.after_micros / 1e6, a.change_pct,
                             a.score) for a in allocs]
        verb = "Reallocated" if applied else "Would reallocate"
        return PortfolioOut(p.total_budget, out, applied,
                            f"{verb} {p.total_budget:.2f} USD across {len(out)} active campaign(s).")

    # -- A/B tests ---------------------------------------------------------------------------------

    def create_ab_test(self, t: AbTestIn) -> AbTest:
        test = AbTest(test_id=f"ab_{secrets.token_hex(6)}", name=t.name, campaign_id=t.campaign_id,
                      variants=t.variants, alpha=t.alpha, min_sample=t.min_sample,
                      created_at=self.clock.now())
        self._experiment(test)  # validate before storing
        self.db.put_doc("ab_test", test.test_id, test.created_at, test)
        return test

    def get_ab_test(self, test_id: str) -> AbTest:
        raw = self.db.get_doc("ab_test", test_id)
        if raw is None:
            raise NotFound(f"no A/B test {test_id!r}", test_id=test_id)
        return msgspec.json.decode(raw, type=AbTest)

    @staticmethod
    def _experiment(t: AbTest) -> abtest.Experiment:
        exp = abtest.Experiment(
            id=t.test_id, campaign_id=t.campaign_id, alpha=t.alpha, min_sample=t.min_sample,
            variants=[abtest.Variant(v.id, v.weight, v.creative_id, dict(v.settings)) for v in t.variants],
        )
        try:
            return abtest.validate(exp)
        except abtest.ABTestError as exc:
            raise ValidationFailed(str(exc), field=exc.field) from exc

    def assign(self, test_id: str, unit_id: str) -> str:
        return abtest.assign(self._experiment(self.get_ab_test(test_id)), unit_id).id

    def analyze_ab_test(self, test_id: str) -> abtest.Analysis:
        test = self.get_ab_test(test_id)
        exp = self._experiment(test)
        try:
            analysis = abtest.analyze(exp, self.stats.variant_counts(exp))
        except abtest.ABTestError as exc:
            raise ValidationFailed(str(exc), field=exc.field) from exc
        if analysis.winner and not test.concluded:
            test = msgspec.structs.replace(test, concluded=True, winner=analysis.winner)
            self.db.put_doc("ab_test", test.test_id, test.created_at, test)
            self.notifier("ab_test.concluded", {
                "test_id": test_id, "winner": analysis.winner, "p_value": analysis.p_value,
            })
        return analysis

    # -- rules ---------------------------------------------------------------------------------------

    def create_rule(self, r: RuleIn) -> RuleOut:
        out = RuleOut(rule_id=f"rule_{secrets.token_hex(6)}", rule=r, created_at=self.clock.now())
        self._rule(out)
        self.db.put_doc("rule", out.rule_id, out.created_at, out)
        self.metrics.active_rules.set(sum(x.rule.enabled for x in self.list_rules()))
        return out

    @staticmethod
    def _rule(r: RuleOut) -> rules.Rule:
        rule = rules.Rule(id=r.rule_id, **msgspec.structs.asdict(r.rule))
        try:
            return rules.validate(rule)
        except rules.RuleError as exc:
            raise ValidationFailed(str(exc), field=exc.field) from exc

    def list_rules(self) -> list[RuleOut]:
        counts = {r["ref"]: r["n"] for r in self.db.query(
            "SELECT ref, COUNT(*) AS n FROM log WHERE kind = 'rule_firing' GROUP BY ref")}
        return [msgspec.structs.replace(r, firings=counts.get(r.rule_id, 0))
                for r in (msgspec.json.decode(b, type=RuleOut) for b in self.db.list_docs("rule"))]

    def get_rule(self, rule_id: str) -> RuleOut:
        for r in self.list_rules():
            if r.rule_id == rule_id:
                return r
        raise NotFound(f"no rule {rule_id!r}", rule_id=rule_id)

    def firings(self, rule_id: str) -> list[rules.Firing]:
        self.get_rule(rule_id)
        return [msgspec.json.decode(b, type=rules.Firing) for b in self.db.read_log("rule_firing", rule_id)]

    async def rules_tick(self) -> list[rules.Firing]:
        """Evaluate the rules that are due now, record every firing and apply its action."""
        firings = self.scheduler.run([self._rule(r) for r in self.list_rules()], self.stats)
        for f in firings:
            self.db.append_log("rule_firing", f.rule_id, f.at, f)
            try:
                self._apply(f)
            except ApiError as exc:  # e.g. the campaign was archived meanwhile: recorded, not applied
                log.warning("rule %s on %s not applied: %s", f.rule_id, f.campaign_id, exc.message)
            self.notifier("rule.fired", msgspec.to_builtins(f))
        self.db.set_meta("rules_scheduler", msgspec.json.encode({
            "last_run": self.scheduler.last_run,
            "last_fired": [[r, c, t] for (r, c), t in self.scheduler.last_fired.items()],
        }).decode())
        return firings

    def _apply(self, f: rules.Firing) -> None:
        if f.action == "notify":
            return
        c = self.store.get(f.campaign_id)
        if f.action == "pause" and c.status == "active":
            self.store.update(c.campaign_id, CampaignPatch(status="paused"))
        elif f.action == "adjust_budget" and f.percent is not None and c.plan:
            budget = c.request.monthly_budget * (1 + f.percent / 100)
            self.store.update(c.campaign_id, CampaignPatch(monthly_budget=budget))
        elif f.action == "adjust_bid" and f.percent is not None and c.plan:
            self.store.set_plan(c.campaign_id, scale_bids(c.plan, 1 + f.percent / 100))

    # -- account -------------------------------------------------------------------------------------

    def export_account(self) -> dict[str, Any]:
        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in self.db.query(sql)]

        def docs(kind: str) -> list[Any]:
            return [msgspec.json.decode(b) for b in self.db.list_docs(kind)]

        hooks = [{k: v for k, v in h.items() if k != "secret"} for h in docs("webhook")]
        log_rows = rows("SELECT kind, ref, ts, body FROM log WHERE kind != 'outbox' ORDER BY id")
        for r in log_rows:
            r["body"] = msgspec.json.decode(r["body"])
        events = rows("SELECT * FROM events ORDER BY seq")
        for e in events:
            e["data"] = msgspec.json.decode(e["data"])
        return {
            "exported_at": self.clock.now(),
            "api_keys": self.keys.list(),
            "campaigns": [msgspec.to_builtins(c) for c in self.store.all()],
            "ab_tests": docs("ab_test"), "rules": docs("rule"), "webhooks": hooks,
            "conversions": rows("SELECT * FROM conversions ORDER BY id"),
            "bid_results": rows("SELECT * FROM bid_results ORDER BY ts"),
            "bidder_events": events, "bid_counts": rows("SELECT * FROM bid_counts ORDER BY day"),
            "log": log_rows,
        }

    def erase_user(self, user_id: str, actor: str) -> ErasureOut:
        with self.db.tx():
            erased = {
                "conversions": self.db.execute("DELETE FROM conversions WHERE user_id = ?", (user_id,)),
                "bidder_events": self.db.execute("DELETE FROM events WHERE user_id = ?", (user_id,)),
            }
            # The audit record proves the erasure without keeping the identifier it erased.
            audit_id = self.db.append_log("audit", "user.erased", self.clock.now(), {
                "action": "user.erased", "user_sha256": hashlib.sha256(user_id.encode()).hexdigest(),
                "erased": erased, "actor_key_id": actor,
            })
        return ErasureOut(user_id, erased, audit_id)
