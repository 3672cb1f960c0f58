"""What happened, counted from the store: the rows the reports, rules, optimiser and A/B analysis read.

Sources and what each counts (money in micros; an impression costs its CPM / 1000):
- bidder events: an impression is a bid with a ``bill`` event, or a ``win`` when no bill came
  (priced at the bill's price when there is one); wins are ``win`` events, losses ``loss`` events;
- the bidder's ``/status`` counters (as daily deltas in ``bid_counts``): bids;
- ``POST /events/conversions``: conversions with their value (revenue) and clicks;
- ``POST /bidding/bid-result``: results reported by other platforms: a bid, and on ``won`` a win and,
  with a ``win_price``, an impression.
Bidder campaign ids are ad set ids ``<campaign>.<platform>.<segment>``; the part before the first dot
is the control-plane campaign.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from control import abtest, optimize, reports, rules
from control.db import Database

Key = tuple[str, str, str]  # day, campaign, ad set
_TOTALS = ("spend_micros", "revenue_micros", "impressions", "clicks", "conversions", "bids", "wins")


def campaign_of(ad_set_or_campaign: str) -> str:
    return ad_set_or_campaign.partition(".")[0]


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


_EVENT_SQL = """
SELECT campaign_id, date(ts, 'unixepoch') AS day, COUNT(*) AS impressions,
       SUM(CAST(ROUND(price * 1000) AS INTEGER)) AS spend
FROM (SELECT campaign_id, bid_id, MIN(ts) AS ts,
             COALESCE(MAX(CASE WHEN kind = 'bill' THEN price END), MAX(price)) AS price
      FROM events WHERE kind IN ('win', 'bill') AND ts >= ? AND ts < ? {where}
      GROUP BY campaign_id, bid_id)
GROUP BY campaign_id, day
"""


class Stats:
    def __init__(self, db: Database) -> None:
        self.db = db

    def rows(self, start: float, end: float, campaign_id: str | None = None) -> list[reports.PerfRow]:
        """Counts per (UTC day, campaign, ad set) over ``[start, end)`` unix seconds."""
        acc: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        like = f"{campaign_id}%" if campaign_id else None
        ev_where = "AND (campaign_id = ? OR campaign_id LIKE ?)" if like else ""
        ev_params: list[object] = [start, end] + ([campaign_id, f"{campaign_id}.%"] if like else [])

        def key(ad_set: str, day: str) -> Key:
            return (day, campaign_of(ad_set), ad_set if "." in ad_set else "")

        for r in self.db.query(_EVENT_SQL.format(where=ev_where), ev_params):
            a = acc[key(r["campaign_id"], r["day"])]
            a["impressions"] += r["impressions"]
            a["spend_micros"] += r["spend"] or 0
        for r in self.db.query(
            "SELECT campaign_id, date(ts, 'unixepoch') AS day, SUM(kind = 'win') AS wins, "
            f"SUM(kind = 'loss') AS losses FROM events WHERE ts >= ? AND ts < ? {ev_where} "
            "GROUP BY campaign_id, day", ev_params,
        ):
            a = acc[key(r["campaign_id"], r["day"])]
            a["wins"] += r["wins"]
            a["losses"] += r["losses"]
        for r in self.db.query(
            "SELECT campaign_id, ad_set_id, date(ts, 'unixepoch') AS day, SUM(kind = 'conversion') AS n, "
            "SUM(CASE WHEN kind = 'conversion' THEN CAST(ROUND(value * 1000000) AS INTEGER) ELSE 0 END) "
            "AS rev, "
            "SUM(kind = 'click') AS clicks FROM conversions WHERE ts >= ? AND ts < ? "
            + ("AND campaign_id = ? " if campaign_id else "") + "GROUP BY campaign_id, ad_set_id, day",
            [start, end] + ([campaign_id] if campaign_id else []),
        ):
            a = acc[(r["day"], r["campaign_id"], r["ad_set_id"])]
            a["conversions"] += r["n"]
            a["revenue_micros"] += r["rev"]
            a["clicks"] += r["clicks"]
        for r in self.db.query(
            "SELECT campaign_id, date(ts, 'unixepoch') AS day, COUNT(*) AS bids, "
            "SUM(status = 'won') AS wins, "
            "SUM(status = 'won' AND win_price > 0) AS imps, "
            "SUM(CASE WHEN status = 'won' THEN CAST(ROUND(win_price * 1000) AS INTEGER) ELSE 0 END) AS spend "
            f"FROM bid_results WHERE ts >= ? AND ts < ? {ev_where} GROUP BY campaign_id, day", ev_params,
        ):
            a = acc[key(r["campaign_id"], r["day"])]
            a["reported_bids"] += r["bids"]
            a["wins"] += r["wins"]
            a["impressions"] += r["imps"]
            a["spend_micros"] += r["spend"]
        bc_where = "AND (campaign_id = ? OR campaign_id LIKE ?)" if like else ""
        for r in self.db.query(
            f"SELECT campaign_id, day, bids FROM bid_counts WHERE day >= ? AND day <= ? {bc_where}",
            [_day(start), _day(max(start, end - 1e-6))] + ([campaign_id, f"{campaign_id}.%"] if like else []),
        ):
            acc[key(r["campaign_id"], r["day"])]["bidder_bids"] += r["bids"]

        out = []
        for (day, cid, ad_set), a in sorted(acc.items()):
            # Loss notices are optional, so the bidder's own counter is the better count when it has one.
            bids = max(a["bidder_bids"], a["wins"] + a["losses"] - a["reported_bids"]) + a["reported_bids"]
            out.append(reports.PerfRow(
                day=dt.date.fromisoformat(day), campaign_id=cid, ad_set_id=ad_set,
                spend_micros=a["spend_micros"], impressions=a["impressions"], clicks=a["clicks"],
                conversions=a["conversions"], revenue_micros=a["revenue_micros"], bids=bids, wins=a["wins"],
            ))
        return out

    def window_totals(self, campaign_id: str | None, start: float, end: float) -> list[rules.WindowTotals]:
        """``rules.MetricsSource``: sums per campaign over ``[start, end)``."""
        per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self.rows(start, end, campaign_id):
            t = per[r.campaign_id]
            for f in _TOTALS:
                t[f] += getattr(r, f)
        return [rules.WindowTotals(campaign_id=cid, **t) for cid, t in sorted(per.items())]

    def campaign_perf(self, campaign_id: str, budget_micros: int, ad_sets: Iterable[tuple[str, bool]],
                      start: float, end: float, target_roas: float | None,
                      target_cpa_micros: int | None) -> optimize.CampaignPerf:
        """The optimiser's view: the campaign and its ad sets (``(id, paused)``) as variants."""
        by_set: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        total: dict[str, int] = defaultdict(int)
        fields = ("spend_micros", "revenue_micros", "impressions", "clicks", "conversions")
        for r in self.rows(start, end, campaign_id):
            for f in (*fields, "bids", "wins"):
                total[f] += getattr(r, f)
            if r.ad_set_id:
                for f in fields:
                    by_set[r.ad_set_id][f] += getattr(r, f)
        variants = [optimize.VariantPerf(id=sid, paused=paused, **by_set.get(sid, {}))
                    for sid, paused in ad_sets]
        return optimize.CampaignPerf(
            campaign_id=campaign_id, budget_micros=budget_micros, target_roas=target_roas,
            target_cpa_micros=target_cpa_micros, variants=variants, **total,
        )

    def variant_counts(self, exp: abtest.Experiment) -> list[abtest.VariantCounts]:
        """Exposures and conversions per variant.

        A variant with a ``creative_id`` is judged on that creative's impressions and conversions;
        otherwise units (the user id, else the bid / request id) are split by ``abtest.assign``.
        """
        exposures: dict[str, int] = defaultdict(int)
        conversions: dict[str, int] = defaultdict(int)
        by_creative: dict[str, str] = {v.creative_id: v.id for v in exp.variants if v.creative_id}
        cwhere, cparams = ("WHERE campaign_id = ? OR campaign_id LIKE ?",
                           [exp.campaign_id, f"{exp.campaign_id}.%"]) if exp.campaign_id else ("", [])
        for r in self.db.query(
            "SELECT creative_id, user_id, bid_id FROM events WHERE kind IN ('win', 'bill') "
            + (f"AND ({cwhere.removeprefix('WHERE ')}) " if cwhere else "")
            + "GROUP BY bid_id", cparams,
        ):
            vid = self._variant(exp, by_creative, r["creative_id"], r["user_id"] or r["bid_id"])
            if vid:
                exposures[vid] += 1
        conv_where = "WHERE kind = 'conversion'" + (" AND campaign_id = ?" if exp.campaign_id else "")
        for r in self.db.query(
            f"SELECT creative_id, user_id, request_id FROM conversions {conv_where}",
            [campaign_of(exp.campaign_id)] if exp.campaign_id else [],
        ):
            vid = self._variant(exp, by_creative, r["creative_id"], r["user_id"] or r["request_id"])
            if vid:
                conversions[vid] += 1
        return [
            abtest.VariantCounts(v.id, exposures[v.id], min(conversions[v.id], exposures[v.id]))
            for v in exp.variants
        ]

    @staticmethod
    def _variant(exp: abtest.Experiment, by_creative: dict[str, str], creative: str, unit: str) -> str | None:
        if by_creative:
            return by_creative.get(creative)
        return abtest.assign(exp, unit).id if unit else None

    def record_bids(self, counters: dict[str, int], now: float) -> None:
        """Turn the bidder's cumulative bid counters into today's deltas (a restart resets them)."""
        with self.db.tx():
            for cid, bids in counters.items():
                last = int(self.db.get_meta(f"bids:{cid}", "0"))
                delta = bids - last if bids >= last else bids
                if delta:
                    self.db.execute(
                        "INSERT INTO bid_counts (campaign_id, day, bids) VALUES (?, ?, ?) "
                        "ON CONFLICT (campaign_id, day) DO UPDATE SET bids = bids + excluded.bids",
                        (cid, _day(now), delta),
                    )
                self.db.set_meta(f"bids:{cid}", str(bids))
