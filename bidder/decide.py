"""The decision's steps joined: a decoded, valid request in, its outcome out.

Request mask, then per imp the imp step and the budget's admission (a refused campaign steps aside for the
next best line), then the response. Each step is C already; ``Decide`` (``bidder/_decide.c``) joins them in
one C call, 8,600 fewer instructions per decision than the Python between them (61,400 against 69,960 on
the simple banner). ``decide_py`` is its Python twin and the readable account of what it does; the tests
run both on the same requests and compare the answers, counters and reservations.

Both read every part from the engine on each call, as the imp step does, so that a
campaign reload, or a test that replaces a part, is seen by the next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from bidder import fx
from bidder._native import Decide
from bidder.impstep import Choice
from bidder.openrtb import BidRequest, Imp
from bidder.value import Context

if TYPE_CHECKING:
    from bidder.engine import Engine
    from bidder.index import Index

__all__ = ["MAX_ADMISSIONS", "NO_BID", "Decide", "Outcome", "decide", "decide_py"]


class Outcome(NamedTuple):
    status: int  # 200, 204 or 400
    body: bytes


NO_BID = Outcome(204, b"")
# How many campaigns may step aside (pacing, budget) for one imp before it goes unbid.
MAX_ADMISSIONS = 4

Chosen = tuple[Imp, Choice, str, int]  # the imp, its choice, the bid id and the choice's campaign


def decide_py(e: Engine, req: BidRequest, cur: str) -> Outcome:
    """The outcome of ``req`` (decoded and valid) answered in ``cur`` (a currency of ``e.rates``)."""
    stats = e.stats
    idx = e.index
    now = e.wall()
    m, ctx = e._request_mask(req, now, idx.live)
    if not m:
        stats.no_bid["no_match"] += 1
        return NO_BID
    rate = e.rates[cur]
    expiry = int(now) + e.settings.bid_ttl  # also the key its reservation is held under
    held = None if req.test == 1 else expiry  # test traffic is bid but never booked: it reserves nothing
    reason = "no_match"
    chosen: list[Chosen] = []
    for imp in req.imp:
        why = _choose(e, chosen, idx, req, imp, m, ctx, held, rate)
        if why and reason == "no_match":
            reason = why
    if not chosen:
        stats.no_bid[reason] += 1
        return NO_BID
    return _respond(e, req, cur, rate, chosen, str(expiry))


def _choose(e: Engine, chosen: list[Chosen], idx: Index, req: BidRequest, imp: Imp, m: int, ctx: Context,
            held: int | None, rate: float) -> str:
    """Append to ``chosen`` the imp's best choice whose campaign could reserve its cost under ``held``
    and return ""; else return the reason for no bid. A campaign refused by its budget or pacer steps
    aside for the next best."""
    why = "no_match"
    for _ in range(MAX_ADMISSIONS):
        best, found = e._imp_step(e, req, imp, m, ctx)
        if best is None:
            return why if why != "no_match" else found
        ci = e._line_campaign[best.line]
        serial = next(e._ids)
        refused = None
        if held is not None:
            # Exactly what the notice will read back from the price we write (``fx.held_micros``).
            micros = best.bid // 1000 if rate == 1.0 else fx.held_micros(fx.from_usd_micros(best.bid, rate), rate)
            refused = e.budget.admit(ci, held, micros, serial)
        if refused is None:
            if best.source == "ai":
                e.fallback.observe(best.value / 1e6)
            chosen.append((imp, best, e._bid_prefix + format(serial, "x"), ci))
            return ""
        e._campaign_stats[ci].no_bid[refused] += 1
        why = refused
        m &= ~idx.campaign_lines[ci]
    return why


def _respond(e: Engine, req: BidRequest, cur: str, rate: float, chosen: list[Chosen], x: str) -> Outcome:
    writer = e._writer
    t = "1" if req.test == 1 else "0"
    explain = e.scorer.explain
    bids: list[tuple[int, bytes]] = []
    for imp, ch, bid_id, ci in chosen:
        line = ch.line
        price = ch.bid / 1e6 if rate == 1.0 else fx.from_usd_micros(ch.bid, rate)
        p, ltv = explain(line, ch.ctx) if ch.source == "ai" else (0.0, 0.0)
        e._campaign_stats[ci].bids += 1
        bids.append((ci, writer.bid(bid_id, imp.id, line, price, cur, x, t, ch.deal, ch.value, p, ltv, ch.source)))
    e.stats.bids += 1
    return Outcome(200, writer.response(req.id, bids, cur))


decide = Decide(Outcome, NO_BID, fx.from_usd_micros, fx.held_micros, MAX_ADMISSIONS)
