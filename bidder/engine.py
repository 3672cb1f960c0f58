"""The decision: OpenRTB request bytes in, response bytes out.

``Engine.bid`` is a pure function of the request bytes and the pre-built state (index, bound model,
buffers); it does no I/O and never raises. Per request it decodes into view Structs and checks them
here; then ``bidder.decide`` (one C call) narrows the lines with bitset operations on request-level
signals (``bidder.targeting``), per imp and offered media type (and per deal) finds the best priced line
(``bidder.impstep``: from the model's price table or with its fused kernel when it has one
(``BestScorer``), else by extracting the candidates, scoring them and picking), has the budget gate admit
its cost, and writes the response.

This is the hot path, measured in microseconds (``bench/bench_bidder.py``): each step here is written
to do as few interpreted operations as it can, and everything that depends only on the campaigns is
computed when they load.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import msgspec
import numpy as np
from numpy.typing import NDArray

from bidder import fx, pricing
from bidder.budget import BudgetGate
from bidder.campaign import Campaign
from bidder.decide import NO_BID, Outcome, decide
from bidder.impstep import Choice, ImpStep, floor_py, imp_tables
from bidder.index import Index
from bidder.notices import Signer
from bidder.openrtb import NBR_INSUFFICIENT_TIME, BidRequest, BidResponse, privacy
from bidder.response import Writer, parts
from bidder.settings import Settings
from bidder.stats import CampaignStats, Stats
from bidder.targeting import RequestMask, tables
from bidder.value import Context, Scorer, ValueModel
from shield import PLATFORM_MULTIPLIERS, CircuitBreaker, Clock, FallbackPricer


class Invalid(Exception):
    """A request that is not acceptable OpenRTB: answered 400 with no body."""


BAD_REQUEST = Outcome(400, b"")


class Prepared(msgspec.Struct, frozen=True):
    """What ``Engine.prepare`` builds for ``Engine.install``."""

    campaigns: list[Campaign]
    model: ValueModel
    index: Index
    scorer: Scorer
    line_campaign: list[int]
    inv_roas: NDArray[np.float64]
    max_cpm: NDArray[np.int64]
    fallback_scale: NDArray[np.float64]
    win_markup: dict[tuple[str, str], bytes]
    writer: Writer
    mask: RequestMask
    step: ImpStep


class Engine:
    __slots__ = (
        "_best", "_bid_prefix", "_campaign_stats", "_cand", "_decide", "_decoder", "_encoder",
        "_fallback_scale", "_ids", "_imp_step", "_inv_roas", "_lax", "_line_campaign", "_max_cpm", "_mono", "_out",
        "_request_mask", "_shade", "_vals", "_writer",
        "breaker", "budget", "campaigns", "fallback", "index", "model", "rates", "scorer", "settings", "signer",
        "stats", "wall", "win_markup",
    )

    def __init__(
        self,
        settings: Settings,
        campaigns: list[Campaign],
        model: ValueModel,
        signer: Signer,
        budget: BudgetGate,
        stats: Stats,
        breaker: CircuitBreaker,
        fallback: FallbackPricer,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.budget = budget
        self.stats = stats
        self.breaker = breaker
        self.fallback = fallback
        self.wall = clock.time
        self._mono = clock.monotonic  # times model calls for the breaker
        self.rates = fx.parse_rates(settings.fx)
        self._shade = settings.shade
        self.model = model
        self._decoder = msgspec.json.Decoder(BidRequest)
        self._lax = msgspec.json.Decoder(BidRequest, strict=False)
        self._encoder = msgspec.json.Encoder()
        self._ids = itertools.count(1)
        self._bid_prefix = budget.prefix  # a bid id: this prefix and the serial in hex (``BudgetGate``)
        self._decide: Callable[[Engine, BidRequest, str], Outcome] = decide  # or its twin, ``decide.decide_py``
        self.load(campaigns)

    # --- state -----------------------------------------------------------------------------------

    def load(self, campaigns: list[Campaign], model: ValueModel | None = None) -> None:
        """``install(prepare(...))``: for a new campaign set (or model), in one go."""
        self.install(self.prepare(campaigns, model))

    def prepare(self, campaigns: list[Campaign], model: ValueModel | None = None) -> Prepared:
        """Build the index, bind the model and pre-encode what a new campaign set (or model) needs,
        touching nothing that serves: with 10,000 campaigns this takes most of a second, so the
        upkeep runs it in a worker thread while the event loop goes on bidding."""
        model = model or self.model
        index = Index(campaigns, self.settings.seat)
        scorer = model.bind(index.lines)
        camp = index.campaigns
        line_campaign = index.lines.campaign.tolist()
        inv_roas, max_cpm = pricing.campaign_arrays(camp)
        fallback_scale = np.array(
            [PLATFORM_MULTIPLIERS.get(c.platform, 1.0) * c.bid.target_roas / 1000.0 for c in camp] or [0.0])
        win_markup = {(camp[ci].id, cr.id): cr.adm.encode()
                      for ci, cr in zip(line_campaign, index.creatives, strict=True) if cr.nurl_markup}
        writer = Writer(self.signer.hmac, *parts(index, self.settings.seat, model.version, self.signer.base))
        mask = RequestMask(index, tables(index), Context, privacy)
        step = ImpStep(imp_tables(index), floor_py, Choice, msgspec.structs.replace,
                       getattr(scorer, "price_table", None))
        return Prepared(campaigns, model, index, scorer, line_campaign, inv_roas, max_cpm, fallback_scale,
                        win_markup, writer, mask, step)

    def install(self, p: Prepared) -> None:
        """Put a prepared state in place, on the event-loop thread, between two requests. The budget
        gate adopts it first, the one step that may refuse (a budget that cannot change); everything
        is assigned after, so a refusal leaves the old state serving untouched."""
        self.budget.bind(p.index)
        n = max(1, p.index.n)
        self._inv_roas, self._fallback_scale, self._max_cpm = p.inv_roas, p.fallback_scale, p.max_cpm
        self._cand = np.zeros(n, dtype=np.int32)
        self._vals = np.zeros(n, dtype=np.float64)
        self._out = np.zeros(2, dtype=np.int64)
        self._campaign_stats: list[CampaignStats] = [self.stats.campaigns[c.id] for c in p.index.campaigns]
        self._line_campaign, self.win_markup = p.line_campaign, p.win_markup
        self._writer = p.writer
        self._request_mask = p.mask.of  # the lines a request's own signals allow, and its Context
        self._imp_step = p.step.best  # an imp's best priced line among them
        self.campaigns = p.campaigns  # all of them, paused ones too: what the next load starts from
        self._best = getattr(p.scorer, "best", None)  # the model's fused kernel, when it has one
        self.index, self.scorer, self.model = p.index, p.scorer, p.model

    # --- the decision ----------------------------------------------------------------------------

    def bid(self, body: bytes, started_ns: int | None = None) -> Outcome:
        """``started_ns``: ``time.perf_counter_ns()`` when the request arrived, for ``tmax``."""
        stats = self.stats
        stats.requests += 1
        try:
            try:
                try:
                    req = self._decoder.decode(body)
                except msgspec.ValidationError as exc:
                    req = self._decode_lax(body, exc)
                imps = req.imp
                if not imps:
                    raise Invalid("imp is empty")
                if len(imps) > 1 and len({i.id for i in imps}) != len(imps):
                    raise Invalid("duplicate imp ids")
                if (req.site is not None) + (req.app is not None) + bool(req.dooh) > 1:
                    raise Invalid("at most one of site, app, dooh")
            except (msgspec.DecodeError, Invalid):  # ValidationError is a DecodeError
                stats.invalid += 1
                return BAD_REQUEST
            tmax = req.tmax
            if tmax is not None and tmax > 0:
                elapsed = 0.0 if started_ns is None else (time.perf_counter_ns() - started_ns) / 1e6
                if tmax - elapsed < self.settings.tmax_margin_ms:
                    stats.no_bid["tmax"] += 1
                    return Outcome(200, self._encoder.encode(BidResponse(id=req.id, nbr=NBR_INSUFFICIENT_TIME)))
            wanted = req.cur
            cur = "USD" if not wanted or "USD" in wanted else self._currency(wanted)
            if cur is None:
                stats.no_bid["currency"] += 1
                return NO_BID
            return self._decide(self, req, cur)
        except Exception:  # never a 500: a failure of ours is a no-bid, counted
            stats.errors += 1
            stats.no_bid["error"] += 1
            return NO_BID

    def _decode_lax(self, body: bytes, exc: msgspec.ValidationError) -> BidRequest:
        # JSON Schema (and so the OpenRTB schemas) counts 320.0 as an integer; some exchanges write
        # integers that way. Only for that error, decode again accepting integral floats.
        if "got `float`" not in str(exc):
            raise exc
        return self._lax.decode(body)

    def _currency(self, wanted: list[str]) -> str | None:
        for c in wanted:
            if c in self.rates:
                return c
        return None

    def _scored(self, idx: Index, bits: bytes, floor: int, first: bool, ctx: Context) -> int:
        """The generic path, for a model without a fused kernel: extract, score, pick."""
        return self._pick(idx, bits, floor, first, lambda cand, n, vals: self.scorer.values(cand, n, ctx, vals))

    def _fallback(self, idx: Index, bits: bytes, floor: int, first: bool) -> int:
        """The breaker's heuristic: the median of recent model values, per platform."""
        median = self.fallback.median()
        if median is None:  # no history: no safe price to fall back on
            self.stats.decisions["fallback_empty"] += 1
            return -1
        self.stats.decisions["fallback"] += 1
        scale = self._fallback_scale
        return self._pick(idx, bits, floor, first, lambda cand, n, vals: pricing.fallback_values(
            cand, n, idx.lines.campaign, scale, median, vals))

    def _pick(self, idx: Index, bits: bytes, floor: int, first: bool,
              value: Callable[[NDArray[np.int32], int, NDArray[np.float64]], None]) -> int:
        """The line that ``pick`` prices highest among the set bits, once ``value`` has valued them."""
        cand, vals = self._cand, self._vals
        n = pricing.extract(bits, cand)
        value(cand, n, vals)
        k = pricing.pick(cand, n, vals, idx.lines.campaign, self._inv_roas, self._max_cpm, floor, first,
                         self._shade, self._out)
        return -1 if k < 0 else int(cand[k])
