"""The imp step in C (``bidder/_imp.c``) against its Python twin (``impstep.imp_best_py``).

Each comparison runs the C step on one engine and the twin on another built alike, so that what the step
does to the engine's parts (the breaker, the decisions counted) is compared too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from bidder import fx
from bidder.budget import BudgetGate
from bidder.campaign import Campaign, parse_campaigns
from bidder.engine import Engine
from bidder.impstep import MAX_FLOOR, Choice, ImpStep, floor_py, imp_best_py, imp_tables
from bidder.notices import Signer
from bidder.openrtb import BidRequest
from bidder.settings import EXAMPLE_CAMPAIGNS, from_env
from bidder.stats import Stats
from bidder.value import BestScorer, Context, Lines, PriorModel, Scorer, ValueModel
from shield import CircuitBreaker, FakeClock, FallbackPricer, NullSink
from tests.bidder.conftest import IAB, SECRET
from tests.bidder.test_shield_path import Broken

SIZES = [(300, 250), (728, 90), (320, 50)]
MIMES = ["video/mp4", "VIDEO/WEBM", "audio/mpeg"]
DEALS = ["d1", "D2", "d3"]
SEATS = ["s1", "S2"]
ADVERTISERS = ["brand.com", "Other.com"]
CURRENCIES = ["USD", "EUR", "JPY", "", "XXX"]


class Fused(PriorModel):
    """The prior model without its price table: the C step calls its fused kernel (``_best``)."""

    version = "fused-1"

    def bind(self, lines: Lines) -> BestScorer:
        scorer = super().bind(lines)
        scorer.price_table = None  # type: ignore[attr-defined]
        return scorer


class Generic:
    """The prior model without its fused kernel: the engine takes the generic path (``_scored``)."""

    version = "generic-1"

    def bind(self, lines: Lines) -> Scorer:
        inner = PriorModel().bind(lines)

        class S:
            def values(self, cand: NDArray[np.int32], n: int, ctx: Context, out: NDArray[np.float64]) -> None:
                inner.values(cand, n, ctx, out)

            def explain(self, line: int, ctx: Context) -> tuple[float, float]:
                return inner.explain(line, ctx)

        return S()


def engine(camps: list[Campaign], model: ValueModel, observed: Sequence[float] = ()) -> Engine:
    s = from_env({}, data_dir="/nonexistent", notice_secret=SECRET, public_url="https://bid.example")
    clock = FakeClock(monotonic=10.0, wall=1_795_012_200.0)
    budget = BudgetGate(clock, NullSink(), {}, {}, {}, s.bid_ttl)
    fallback = FallbackPricer()
    for v in observed:
        fallback.observe(v)
    return Engine(s, camps, model, Signer(SECRET.encode(), s.notice_base), budget, Stats(),
                  CircuitBreaker("model", clock), fallback, clock)


def choices(a: Engine, b: Engine, req: BidRequest, m: int, device_type: int = 2) -> tuple[object, object]:
    """The C step's (choice, why) on ``a`` and the twin's on ``b``, with what each did to its engine."""
    ctx = Context(device_type=device_type, country="USA")
    got = [a._imp_step(a, req, imp, m, ctx) for imp in req.imp]
    want = [imp_best_py(b, req, imp, m, ctx) for imp in req.imp]

    def seen(e: Engine, answers: list[tuple[Choice | None, str]]) -> object:
        return ([(c and msgspec.structs.astuple(c), why) for c, why in answers], dict(e.stats.decisions),
                str(e.breaker.state), e.fallback.median())
    return seen(a, got), seen(b, want)


def some(pool: list[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(pool), max_size=2, unique=True)


# A rate, or rates by context: the line's value then depends on the imp's format and the device type.
rate = st.sampled_from([0.001, 0.00037, 0.0002, 0.00005, 0.0])
rates = rate | st.fixed_dictionaries({"default": rate},
                                     optional={"1": rate, "2": rate, "banner": rate, "video/4": rate})


@st.composite
def a_campaign(draw: st.DrawFn, i: int) -> dict[str, Any]:
    def creative(k: int) -> dict[str, Any]:
        fmt = draw(st.sampled_from(["banner", "banner", "banner", "video", "audio", "native"]))
        w, h = draw(st.sampled_from([SIZES[0], *SIZES]))
        return {"id": f"cr{k}", "format": fmt, "w": w, "h": h, "adm": "x", "attr": draw(some([1, 2, 3])),
                "mimes": draw(st.lists(st.sampled_from(MIMES), min_size=1, max_size=2, unique=True)),
                "duration": draw(st.sampled_from([0, 15, 30, 60]))}

    return {
        "id": f"c{i}", "advertiser": draw(st.sampled_from(ADVERTISERS)), "seat": draw(st.sampled_from(["", *SEATS])),
        "budget": {"total": 100.0},
        "bid": {"max_cpm": draw(st.sampled_from([0.5, 2.0, 10.0, 3.7])),
                "value_per_conversion": draw(st.sampled_from([10.0, 7.3])),
                "target_roas": draw(st.sampled_from([1.0, 1.3, 0.7])),
                "conversion_rate": draw(rates)},
        "targeting": {"deal_ids": draw(st.sampled_from([[], [], [], [], DEALS[:2], *[[d] for d in DEALS]]))},
        "creatives": [creative(k) for k in range(draw(st.integers(1, 3)))],
    }


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


# Mostly sizes and durations the campaigns have, so that imps and lines meet.
pair = st.sampled_from([SIZES[0], SIZES[0], *SIZES, (300, 0), (0, 0), (90, 728)])
size = st.sampled_from([0, 300, 250, 728])
# Some just under the campaigns' caps, where a shaded first-price bid is raised to the floor.
floors = st.sampled_from([0.0, 0.1, 1.0, 3.0, -1.0, 1e30, 0.45, 1.9, 3.5, 9.5]) | st.floats(0, 20, allow_nan=False)
small_durations = st.sampled_from([0, 0, 15, 30, 45, 60, -5])
durations = small_durations | small_durations | st.integers(-(2**63), 2**63 - 1)
player = {"mimes": some(MIMES + ["Video/MP4"]) | maybe(some(MIMES)), "minduration": durations,
          "maxduration": maybe(durations), "battr": maybe(some([1, 2, 3, 9]))}


@st.composite
def banner(draw: st.DrawFn) -> dict[str, Any]:
    b: dict[str, Any] = {}
    if draw(st.integers(0, 3)) < 3:  # hypothesis draws 0 most: mostly a size
        b["w"], b["h"] = draw(pair)
    if draw(st.booleans()):
        b["format"] = [{"w": w, "h": h} for w, h in draw(st.lists(pair, max_size=3))]
    if draw(st.booleans()):
        b["battr"] = draw(some([1, 2, 3, 9]))
    return b


deal = st.fixed_dictionaries({"id": st.sampled_from([*DEALS, "nope"])}, optional={
    "bidfloor": floors, "bidfloorcur": st.sampled_from(CURRENCIES), "at": maybe(st.integers(1, 3)),
    "wseat": maybe(some(SEATS + ["rtb"])), "wadomain": maybe(some(ADVERTISERS + ["BRAND.COM"]))})
pmp = st.fixed_dictionaries({"deals": st.lists(deal, min_size=1, max_size=3)}, optional={
    "private_auction": st.integers(0, 1)}) | st.fixed_dictionaries({}, optional={"deals": st.none()})
imp = st.fixed_dictionaries({"id": st.just("1"), "banner": banner() | banner() | st.none(), "pmp": pmp | st.none()},
                            optional={
    "video": st.fixed_dictionaries({}, optional={**player, "w": maybe(size), "h": maybe(size)}),
    "audio": st.fixed_dictionaries({}, optional=player),
    "native": st.fixed_dictionaries({}, optional={"request": maybe(st.sampled_from(["", "{}"])),
                                                  "battr": maybe(some([1, 2]))}),
    "bidfloor": floors, "bidfloorcur": st.sampled_from(CURRENCIES),
})
request = st.fixed_dictionaries({"id": st.just("r"), "imp": st.lists(imp, min_size=1, max_size=2),
                                 "at": st.sampled_from([1, 1, 2, 3])})
models = st.sampled_from(["prior", "prior", "fused", "generic", "0", "2"])  # a digit: failing after that many


def model_of(name: str) -> ValueModel:
    models = {"prior": PriorModel, "fused": Fused, "generic": Generic}
    return models[name]() if name in models else Broken(int(name))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine
@given(cs=st.integers(1, 5).flatmap(lambda n: st.tuples(*(a_campaign(i) for i in range(n)))), r=request,
       model=models, observed=st.lists(st.sampled_from([0.5, 2.0, 4.0]), max_size=3), keep=st.integers(min_value=0),
       device_type=st.sampled_from([2, 4, 0, 8, 9, -1, 2**40]))
def test_the_c_step_is_its_python_twins(cs: tuple[dict[str, Any], ...], r: dict[str, Any], model: str,
                                        observed: list[float], keep: int, device_type: int) -> None:
    camps = parse_campaigns(json.dumps({"campaigns": list(cs)}).encode())
    a, b = engine(camps, model_of(model), observed), engine(camps, model_of(model), observed)
    req = msgspec.json.decode(json.dumps(r), type=BidRequest)
    for m in (a.index.live, a.index.live & keep):
        got, want = choices(a, b, req, m, device_type)
        assert got == want


def test_the_example_campaigns_on_every_iab_request() -> None:
    camps = parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes())
    a, b = engine(camps, PriorModel()), engine(camps, PriorModel())
    bids = 0
    for path in sorted(IAB.glob("*request*.json")):
        req = msgspec.json.decode(path.read_bytes(), type=BidRequest)
        got, want = choices(a, b, req, a.index.live)
        assert got == want
        bids += sum(c is not None for c, _ in got[0])  # type: ignore[index]
    assert bids >= 4  # banner, mobile, video and deal samples each get a bid


def test_wider_than_the_stack_buffer() -> None:
    """More than 16,384 lines: the buffers come from the heap."""
    camps = parse_campaigns(json.dumps({"campaigns": [
        {"id": f"c{i}", "advertiser": "a.com", "budget": {"total": 1.0},
         "bid": {"max_cpm": 9.0 if i == 16_999 else 1.0 + i % 7, "conversion_rate": 0.001,
                 "value_per_conversion": 10.0},
         "creatives": [{"id": "x", "w": 300, "h": 250 if i % 3 else 90, "adm": "x"}]}
        for i in range(17_000)]}).encode())
    a, b = engine(camps, PriorModel()), engine(camps, PriorModel())
    answers: list[tuple[tuple[Any, ...], str]] = []
    for w, h in ((300, 250), (300, 90), (1, 1)):
        req = msgspec.json.decode(json.dumps({"id": "r", "imp": [{"id": "1", "banner": {"w": w, "h": h}}]}),
                                  type=BidRequest)
        got, want = choices(a, b, req, a.index.live)
        assert got == want
        answers.append(got[0][0])  # type: ignore[index]
    assert answers[0][0][2] == 16_999  # the last line, past the stack's reach, bids highest
    assert answers[1][0] is not None and answers[2] == (None, "no_match")


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # each example builds an engine
@given(amount=st.sampled_from([0.1, 0.7, 1.13, 2.675, 1e-7, 1e-6, 3.000001]) | st.floats(1e-9, 400.0),
       cur=st.sampled_from(["USD", "EUR", "JPY", "KRW"]))
def test_floors_in_doubles_as_python_computes_them(amount: float, cur: str) -> None:
    """The C step computes ``fx.to_usd_micros_ceil`` in doubles; a fixed-price deal (``at`` 3) bids the
    floor itself, so its bid shows the floor to the micro."""
    a = engine(parse_campaigns(json.dumps({"campaigns": [{
        "id": "c", "advertiser": "a.com", "budget": {"total": 1.0}, "targeting": {"deal_ids": ["fixed"]},
        "bid": {"max_cpm": 1000.0, "conversion_rate": 1.0, "value_per_conversion": 10.0},
        "creatives": [{"id": "x", "w": 300, "h": 250, "adm": "x"}]}]}).encode()), PriorModel())
    req = msgspec.json.decode(json.dumps({"id": "r", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "pmp": {
        "deals": [{"id": "fixed", "bidfloor": amount, "bidfloorcur": cur, "at": 3}]}}]}), type=BidRequest)
    choice, why = a._imp_step(a, req, req.imp[0], a.index.live, Context())
    assert choice is not None and choice.bid == fx.to_usd_micros_ceil(amount, fx.RATES[cur]), why


def test_a_device_type_past_the_table_prices_as_unknown() -> None:
    """Device types outside 0-8 read the row of device type 0 (unknown), as ``prior_best`` does."""
    camps = parse_campaigns(json.dumps({"campaigns": [{
        "id": "c", "advertiser": "a.com", "budget": {"total": 1.0},
        "bid": {"max_cpm": 50.0, "value_per_conversion": 10.0, "conversion_rate": {"default": 0.001, "1": 0.002}},
        "creatives": [{"id": "x", "w": 300, "h": 250, "adm": "x"}]}]}).encode())
    a, b = engine(camps, PriorModel()), engine(camps, PriorModel())
    req = msgspec.json.decode(b'{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]}', type=BidRequest)
    bids = {}
    for d in (0, 1, 9, -1, 2**40):
        got, want = choices(a, b, req, a.index.live, d)
        assert got == want
        bids[d] = got[0][0][0][1]  # type: ignore[index]
    assert bids[0] == bids[9] == bids[-1] == bids[2**40] == 10_000_000 and bids[1] == 20_000_000


def test_a_floor_past_any_bid_is_a_no_bid_not_a_model_failure() -> None:
    """A floor past 2 ** 63 - 1 micros (1e30 from an exchange, or an infinite one that JSON cannot carry but an
    Imp can) is ``MAX_FLOOR``: below it, no bid, and the model is not called into an overflow that the
    breaker would count as its failure."""
    a = engine(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()), PriorModel())
    req = msgspec.json.decode(b'{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":1e30}]}',
                              type=BidRequest)
    for imp in (req.imp[0], msgspec.structs.replace(req.imp[0], bidfloor=math.inf)):
        for _ in range(4):  # three failures would open the breaker
            assert a._imp_step(a, req, imp, a.index.live, Context()) == (None, "below_floor")
            assert imp_best_py(a, req, imp, a.index.live, Context()) == (None, "below_floor")
    assert a.breaker.stats().state == "closed" and a.breaker.stats().bad_calls == 0
    assert floor_py({"USD": 1.0}, 1e30, "USD") == floor_py({"USD": 1.0}, math.inf, "") == MAX_FLOOR


def test_refusals_say_what_was_wrong() -> None:
    camps = parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes())
    a = engine(camps, PriorModel())
    t = imp_tables(a.index)
    args = (floor_py, Choice, msgspec.structs.replace)
    req = msgspec.json.decode(b'{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]}', type=BidRequest)
    with pytest.raises(ValueError, match="never initialised"):
        ImpStep.__new__(ImpStep).best(a, req, req.imp[0], 0, Context())
    with pytest.raises(ValueError, match="tables must have 12 fields"):
        ImpStep(t[:5], *args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="open holds"):
        ImpStep(t._replace(open=10**6), *args)
    with pytest.raises(ValueError, match="deal holds"):
        ImpStep(t._replace(deal={"x": -1}), *args)
    with pytest.raises(ValueError, match="nbytes must be"):
        ImpStep(t._replace(nbytes=t.nwords * 8 + 1), *args)
    with pytest.raises(TypeError, match="durations must be"):
        ImpStep(t._replace(durations=((15,),)), *args)  # type: ignore[arg-type]
    step = ImpStep(t, *args)
    with pytest.raises(TypeError, match="already initialised"):
        step.__init__(t, *args)  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 5 arguments"):
        step.best(a, req, req.imp[0], a.index.live)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="int bitset"):
        step.best(a, req, req.imp[0], "all", Context())  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        step.best(a, req, req.imp[0], 1 << (64 * t.nwords), Context())  # a bit past the last line
    a._out = np.zeros(2, dtype=np.float64)
    with pytest.raises(TypeError, match="two int64"):
        step.best(a, req, req.imp[0], a.index.live, Context())
