"""The imp step: an impression's best priced line, among the lines its request allows.

For each media type the imp offers (and each of its deals), it narrows the request's lines to those whose
creative fits and that no ``battr`` blocks, prices them with the model (through the circuit breaker, or
with its heuristic fallback) against the floor, and keeps the highest bid. ``ImpStep``
(``bidder/_imp.c``) does it in one call per imp over the index's bitsets as rows of machine words (as
``targeting.RequestMask``); ``imp_best_py`` is its Python twin, over the index's ``int`` bitsets, and the
tests compare the two. Both call the same engine parts for the price: the breaker, the model's fused
kernel (``_best``) or its generic path (``_scored``), and the fallback (``_fallback``); except that
when the scorer has a ``value.PriceTable`` (the priors), the C step prices from it as their fused
kernel does, without calling it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import msgspec

from bidder import fx
from bidder._native import ImpStep
from bidder.index import Index
from bidder.openrtb import BidRequest, Imp
from bidder.targeting import Rows
from bidder.value import FORMATS, Context

if TYPE_CHECKING:
    from bidder.engine import Engine

__all__ = ["MAX_FLOOR", "Choice", "ImpStep", "ImpTables", "imp_best_py", "imp_tables", "media"]

_FMT = {f: i for i, f in enumerate(FORMATS)}
# The highest floor, in micros: the kernels take int64, and no bid reaches it (a bid is capped at its
# campaign's max_cpm). A higher floor is this one, not a model failure for the breaker to count.
MAX_FLOOR = 2**63 - 1
_replace = msgspec.structs.replace


class Choice(msgspec.Struct, gc=False):
    bid: int  # USD micros CPM
    value: int  # USD micros CPM, before shading
    line: int
    deal: str | None
    ctx: Context
    source: str  # "ai": the value model priced it; "fallback": the breaker's heuristic did


class ImpTables(NamedTuple):
    """What ``ImpStep`` is built from (``ImpStep(tables, ...)``): rows of ``nwords`` 64-bit words, as
    ``targeting.Tables``, and the lookup tables that map a value to its row."""

    words: bytes
    nwords: int
    nbytes: int  # the bytes of a bitset the model's kernel reads (``Index.nbytes``)
    open: int  # row: the lines of the open auction
    media: tuple[int, ...]  # a row per format, in ``FORMATS`` order
    banner_size: dict[tuple[int, int], int]
    mime: dict[str, int]
    durations: tuple[tuple[int, int], ...]  # (creative duration, row)
    attr: dict[int, int]
    deal: dict[str, int]
    seat: dict[str, int]
    advertiser: dict[str, int]


def imp_tables(index: Index) -> ImpTables:
    rows = Rows(index.n)
    open_, media = rows.row(index.open), tuple(rows.row(index.media.get(f, 0)) for f in FORMATS)
    banner_size, mime, attr = rows.table(index.banner_size), rows.table(index.mime), rows.table(index.attr)
    durations = tuple((d, rows.row(bits)) for d, bits in index.duration.items())
    deal, seat, advertiser = rows.table(index.deal), rows.table(index.seat), rows.table(index.advertiser)
    return ImpTables(rows.words(), rows.nwords, index.nbytes, open_, media, banner_size, mime, durations, attr,
                     deal, seat, advertiser)


def imp_best_py(e: Engine, req: BidRequest, imp: Imp, m: int, ctx: Context) -> tuple[Choice | None, str]:
    """Twin of ``ImpStep.best``: the imp's best choice among lines ``m``, else the reason for no bid."""
    idx = e.index
    best: Choice | None = None
    why = "no_match"
    pmp = imp.pmp
    deals = pmp.deals if pmp and pmp.deals else ()
    private = pmp is not None and pmp.private_auction == 1
    open_floor = None if private else floor_py(e.rates, imp.bidfloor, imp.bidfloorcur)
    for fmt, mask, battr, w, h in media(idx, imp):
        mm = m & mask
        if battr:
            mm &= ~idx.any_of(idx.attr, battr)
        if not mm:
            continue
        c = _replace(ctx, fmt=_FMT[fmt], w=w, h=h)
        if not private:
            if open_floor is None:
                why = "currency"
            else:
                got = price_py(e, idx, mm & idx.open, open_floor, req.at == 1, c, None)
                if got is not None and (best is None or got.bid > best.bid):
                    best = got
                elif got is None and why == "no_match" and mm & idx.open:
                    why = "below_floor"
        for deal in deals:
            dm = mm & idx.deal.get(deal.id, 0)
            if deal.wseat:
                dm &= idx.any_of(idx.seat, deal.wseat)
            if deal.wadomain:
                dm &= idx.any_of(idx.advertiser, (a.lower() for a in deal.wadomain))
            if not dm:
                continue
            floor = floor_py(e.rates, deal.bidfloor, deal.bidfloorcur)
            if floor is None:
                why = "currency"
                continue
            at = deal.at or req.at
            got = price_py(e, idx, dm, floor, at == 1, c, deal.id)
            if got is not None and at == 3:  # fixed-price deal: the price is the floor
                got.bid = floor
            if got is not None and (best is None or got.bid > best.bid):
                best = got
            elif got is None and why == "no_match":
                why = "below_floor"
    if best is None and private and why == "no_match":
        why = "private_auction"
    return best, why


def floor_py(rates: dict[str, float], amount: float, currency: str) -> int | None:
    """A floor in USD micros; None when its currency is not in ``rates``."""
    rate = rates.get(currency or "USD")
    if rate is None:
        return None
    if not amount > 0:  # also NaN: no floor
        return 0
    if amount / rate * 1_000_000 - 1e-6 >= MAX_FLOOR:  # also infinite: nothing can bid, as below any floor
        return MAX_FLOOR
    return fx.to_usd_micros_ceil(amount, rate)


def price_py(e: Engine, idx: Index, mask: int, floor: int, first: bool, ctx: Context,
             deal: str | None) -> Choice | None:
    """The best line of ``mask`` at ``floor``: priced by the model through the breaker, else by the fallback."""
    if not mask:
        return None
    bits = mask.to_bytes(idx.nbytes, "little")
    out = e._out
    breaker = e.breaker
    token = breaker.allow()
    if token:
        best = e._best
        t0 = e._mono()
        try:
            if best is not None:
                line = best(bits, ctx, floor, first, e._shade, out)
            else:
                line = e._scored(idx, bits, floor, first, ctx)
        except Exception:  # a failing model is the breaker's business, not the exchange's
            breaker.record_failure(token)
        else:
            breaker.record_success(token, e._mono() - t0)
            e.stats.decisions["ai"] += 1
            if line < 0:
                return None
            bid, value = out.tolist()
            return Choice(bid, value, line, deal, ctx, "ai")
    line = e._fallback(idx, bits, floor, first)
    if line < 0:
        return None
    bid, value = out.tolist()
    return Choice(bid, value, line, deal, ctx, "fallback")


def media(idx: Index, imp: Imp) -> list[tuple[str, int, list[int] | None, int, int]]:
    """(format, lines that fit, blocked attributes, w, h) for each media type the imp offers."""
    out = []
    b = imp.banner
    if b is not None:
        if b.format:
            sizes = [(f.w, f.h) for f in b.format]
            if b.w and b.h:
                sizes.insert(0, (b.w, b.h))
            w, h = sizes[0]
            mask = idx.any_of(idx.banner_size, sizes)
        elif b.w and b.h:
            w, h = b.w, b.h
            mask = idx.banner_size.get((w, h), 0)
        else:
            w = h = mask = 0
        out.append(("banner", mask, b.battr, w, h))
    if imp.video is not None or imp.audio is not None:
        for fmt, m in (("video", imp.video), ("audio", imp.audio)):
            if m is not None and m.mimes:  # without mimes we cannot know what the player plays
                mask = idx.media.get(fmt, 0) & idx.durations(m.minduration, m.maxduration)
                mask &= idx.any_of(idx.mime, (t.lower() for t in m.mimes))
                w = getattr(m, "w", None) or 0
                h = getattr(m, "h", None) or 0
                out.append((fmt, mask, m.battr, w, h))
    if imp.native is not None and imp.native.request:  # no assets asked for: nothing we can render
        out.append(("native", idx.media.get("native", 0), imp.native.battr, 0, 0))
    return out
