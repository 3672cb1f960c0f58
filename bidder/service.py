"""Everything a bidder process serves besides the decision: notices, status, metrics, events.

``Bidder`` owns the state of one worker (engine, ledger, budget gate, counters) and answers each
endpoint as ``(status, content type, body)``; ``bidder.app`` adapts it to ASGI and RSGI.
"""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import parse_qsl

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from bidder import fx
from bidder.budget import BudgetGate, parse_platform_budgets
from bidder.campaign import Campaign, load_campaigns
from bidder.engine import Engine
from bidder.ledger import Ledger
from bidder.notices import NoticeError, Signer, load_secret
from bidder.settings import Settings
from bidder.stats import LATENCY_BUCKETS_MS, NO_BID_REASONS, Stats
from bidder.value import PriorModel, ValueModel
from shield import CircuitBreaker, Clock, FallbackPricer, MonotonicClock

Answer = tuple[int, str, bytes]
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
_json = msgspec.json.Encoder()


class Bidder:
    def __init__(
        self,
        settings: Settings,
        campaigns: list[Campaign] | None = None,
        model: ValueModel | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        clock = clock or MonotonicClock()
        self.wall = wall = clock.time
        data = Path(settings.data_dir)
        self.stats = Stats()
        self.ledger = Ledger(data, wall, settings.notice_retention)
        for cid, micros in self.ledger.spend.items():
            self.stats.campaigns[cid].spend = micros
        self.signer = Signer(load_secret(settings.notice_secret, data), settings.notice_base)
        sink = _Sink(self.stats, self.ledger)
        self.budget = BudgetGate(clock, sink, self.ledger.spend, self.ledger.spend_last_day,
                                 parse_platform_budgets(settings.platform_budgets), settings.bid_ttl)
        self.breaker = CircuitBreaker("model", clock, sink, slow_call_seconds=settings.model_budget_ms / 1000)
        self.fallback = FallbackPricer()
        if campaigns is None:
            campaigns = load_campaigns(settings.campaigns)
        if model is None and settings.model:
            from bidder.models import load_model

            model = load_model(settings.model, settings.ltv_model or None, settings.users or None)
        self.upkeep_status: dict[str, object] = {}  # filled by bidder.upkeep when it runs
        self.engine = Engine(settings, campaigns, model or PriorModel(), self.signer, self.budget,
                             self.stats, self.breaker, self.fallback, clock)
        self.campaign_source = "control" if settings.control_url else "file"
        self.ready = False

    def warm_up(self) -> None:
        """Compile every kernel and run one decision end to end before declaring readiness."""
        from bidder import pricing, value

        value.warm_up()
        pricing.warm_up()
        if self.settings.model:
            from bidder.models import warm_up

            warm_up()
        self.engine.bid(b'{"id":"warm-up","imp":[{"id":"1","banner":{"w":1,"h":1}}]}')
        self.stats.requests -= 1
        self.ready = True

    def close(self) -> None:
        self.ledger.close()

    # --- notices -----------------------------------------------------------------------------------

    def notice(self, kind: str, query: str) -> Answer:
        stats = self.stats
        try:
            n = self.signer.read(kind, query)
        except NoticeError as exc:
            stats.notices[(kind, str(exc))] += 1
            return 400, TEXT, b""
        now = self.wall()
        if now > n.expiry + self.settings.notice_retention:
            # Past the retention we no longer know whether it was booked already: refuse it.
            stats.notices[(kind, "stale")] += 1
            return 410, TEXT, b""
        rate = self.engine.rates.get(n.currency)
        if rate is None:
            stats.notices[(kind, "bad_currency")] += 1
            return 400, TEXT, b""
        cs = stats.campaigns[n.campaign_id]
        common = {"campaign_id": n.campaign_id, "bid_id": n.bid_id, "imp_id": n.imp_id,
                  "creative_id": n.creative_id}
        if kind == "loss":
            if not n.test:  # test bids reserved nothing
                self.budget.release(n.campaign_id, n.bid_id, n.expiry, fx.held_micros(n.bid_price, rate))
            cs.losses += 1
            stats.notices[(kind, "ok")] += 1
            self.ledger.append("loss", price=n.bid_price / rate, data={"reason": n.loss_reason or ""},
                               **common)
            return 200, TEXT, b""

        raw = (n.price or "").strip()
        if raw.upper() == "AUDIT":  # an exchange checking the URL: count it, book nothing
            cs.audits += 1
            stats.notices[(kind, "audit")] += 1
            return 200, TEXT, b""
        try:
            price = float(raw)
        except ValueError:
            price = math.nan
        if not (math.isfinite(price) and price >= 0):
            stats.notices[(kind, "bad_price")] += 1
            return 400, TEXT, b""
        if price > n.bid_price * (1 + 1e-9):
            stats.notices[(kind, "above_bid")] += 1
            return 400, TEXT, b""
        if self.ledger.seen(kind, n.bid_id):
            stats.notices[(kind, "duplicate")] += 1
            return 200, TEXT, b""
        usd_cpm = price / rate
        if kind == "win":
            cs.wins += 1
            self.ledger.append("win", price=usd_cpm, data={"test": n.test}, **common)
            stats.notices[(kind, "ok")] += 1
            return 200, "text/html; charset=utf-8", self._win_markup(n.campaign_id, n.creative_id)
        # A billing notice books the clearing cost: CPM / 1000 per impression, in micros.
        cost = 0 if n.test else round(usd_cpm * 1000)
        self.ledger.append("bill", price=usd_cpm, cost=cost, data={"test": n.test}, **common)
        if not n.test:  # what the bid reserved, read back from its signed price
            self.budget.commit(n.campaign_id, n.bid_id, n.expiry, fx.held_micros(n.bid_price, rate), cost)
        cs.billed += 1
        cs.spend += cost
        stats.notices[(kind, "ok")] += 1
        return 200, TEXT, b""

    def _win_markup(self, campaign_id: str, creative_id: str) -> bytes:
        """Markup for creatives served from the win notice (``nurl_markup``)."""
        return self.engine.win_markup.get((campaign_id, creative_id), b"")

    # --- introspection -----------------------------------------------------------------------------

    def status(self) -> Answer:
        s = self.stats
        body = {
            "campaigns": {cid: cs.as_dict() for cid, cs in s.campaigns.items()},
            "requests": s.requests,
            "bids": s.bids,
            "invalid": s.invalid,
            "errors": s.errors,
            "no_bid": dict(s.no_bid),
            "notices": {f"{k}:{o}": v for (k, o), v in s.notices.items()},
            "model": self.engine.model.version,
            "decisions": dict(s.decisions),
            "breaker": {"state": str(self.breaker.state), **msgspec.structs.asdict(self.breaker.stats())},
            "fallback": msgspec.structs.asdict(self.fallback.stats()),
            "budgets": self.budget.stats(),
            "events": dict(s.events),
            "campaign_source": self.campaign_source,
            **self.upkeep_status,
            "active_campaigns": len(self.engine.index.campaigns),
            "lines": self.engine.index.n,
        }
        return 200, JSON, _json.encode(body)

    def events(self, query: str) -> Answer:
        q = dict(parse_qsl(query))
        try:
            after = int(q.get("after", "0"))
            limit = min(int(q.get("limit", "1000")), 10_000)
        except ValueError:
            return 400, JSON, b'{"error":"after and limit must be integers"}'
        events = self.ledger.since(after, max(1, limit))
        nxt = events[-1].seq if events else max(after, 0)
        return 200, JSON, _json.encode({"events": events, "next": nxt})

    def metrics(self) -> Answer:
        registry = CollectorRegistry()
        registry.register(_Collector(self))
        return 200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(registry)


class _Sink:
    """Shield events: counted for /metrics and written to the ledger, whence the control plane pulls
    them (``GET /events``) and forwards them as webhooks."""

    def __init__(self, stats: Stats, ledger: Ledger) -> None:
        self._stats = stats
        self._ledger = ledger

    def emit(self, event: object) -> None:
        kind = str(getattr(event, "kind", "event"))
        self._stats.events[kind] += 1
        data = {k: v for k, v in msgspec.structs.asdict(event).items() if k != "kind"}  # type: ignore[arg-type]
        key = str(data.get("key", ""))
        campaign = key.split(":")[1] if key.startswith("campaign:") else ""
        self._ledger.append(kind, campaign_id=campaign, data=data)


class _Collector:
    def __init__(self, bidder: Bidder) -> None:
        self._b = bidder

    def collect(self):  # type: ignore[no-untyped-def]
        s = self._b.stats
        req = CounterMetricFamily("rtb_bid_requests", "Bid requests by outcome", labels=["outcome"])
        no_bid = sum(s.no_bid.values())
        req.add_metric(["bid"], s.bids)
        req.add_metric(["no_bid"], no_bid - s.no_bid.get("error", 0))
        req.add_metric(["invalid"], s.invalid)
        req.add_metric(["error"], s.errors)
        yield req
        nb = CounterMetricFamily("rtb_no_bids", "No-bids by reason", labels=["reason"])
        for r in NO_BID_REASONS:
            nb.add_metric([r], s.no_bid.get(r, 0))
        yield nb
        notices = CounterMetricFamily("rtb_notices", "Notices by kind and outcome", labels=["kind", "outcome"])
        for (k, o), v in sorted(s.notices.items()):
            notices.add_metric([k, o], v)
        yield notices
        spend = CounterMetricFamily("rtb_spend_usd", "Spend booked from billing notices, USD")
        spend.add_metric([], sum(c.spend for c in s.campaigns.values()) / 1e6)
        yield spend
        buckets, acc = [], 0
        for bound, count in zip(LATENCY_BUCKETS_MS, s.latency, strict=False):
            acc += count
            buckets.append((repr(bound), acc))
        acc += s.latency[-1]
        buckets.append(("+Inf", acc))
        hist = HistogramMetricFamily("rtb_request_latency_milliseconds",
                                     "Time spent answering a bid request", unit="")
        hist.add_metric([], buckets, sum_value=s.latency_sum_ns / 1e6)
        yield hist
        dec = CounterMetricFamily("rtb_decisions", "Priced imps by source of the price", labels=["source"])
        for source in ("ai", "fallback", "fallback_empty"):
            dec.add_metric([source], s.decisions.get(source, 0))
        yield dec
        state = GaugeMetricFamily("rtb_breaker_state", "1 for the model breaker's current state", labels=["state"])
        current = str(self._b.breaker.state)
        for name in ("closed", "open", "half_open", "forced_open", "disabled"):
            state.add_metric([name], 1.0 if current == name else 0.0)
        yield state
        fb = CounterMetricFamily("rtb_fallback_bids", "Bids priced by the fallback heuristic")
        fb.add_metric([], s.decisions.get("fallback", 0))
        yield fb
        ev = CounterMetricFamily("rtb_shield_events", "Shield events by kind", labels=["kind"])
        for kind in ("budget.alert", "breaker.state_changed"):
            ev.add_metric([kind], s.events.get(kind, 0))
        yield ev
        ready = GaugeMetricFamily("rtb_ready", "1 when campaigns are loaded and kernels compiled")
        ready.add_metric([], 1.0 if self._b.ready else 0.0)
        yield ready
