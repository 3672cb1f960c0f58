"""The bid path behind the shield: reservations, step-aside, platform caps, the model breaker."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from bidder import fx
from bidder.value import Context, Lines, PriorModel, Scorer
from tests.bidder.conftest import campaign, campaigns, sample
from tests.memory import grown_by

BANNER = sample("request-1-simple-banner.json")  # first price, floor 0.03


def bid(b, body: bytes = BANNER) -> dict | None:
    status, out = b.engine.bid(body)
    return json.loads(out)["seatbid"][0]["bid"][0] if status == 200 else None


def notice(b, url: str, price: str) -> int:
    parts = urlsplit(url.replace("${AUCTION_PRICE}", price).replace("${AUCTION_LOSS}", "102"))
    return b.notice(parts.path.rsplit("/", 1)[-1], parts.query)[0]


def small(total: float, **kw) -> dict:
    # value 3.0 CPM, first price shaded to 2.4 CPM: each bid reserves 2400 micros
    return campaign(budget={"total": total}, **kw)


def test_reservations_hold_the_budget_until_a_notice(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.005)))  # 5000 micros: room for two 2400-micro reservations
    first, second = bid(b), bid(b)
    assert first and second and bid(b) is None
    assert b.stats.no_bid["budget"] == 1
    assert notice(b, first["lurl"], "") == 200  # a loss gives its reservation back
    assert bid(b) is not None


def test_billing_books_the_clearing_cost_and_frees_the_rest(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.006)))
    first = bid(b)
    assert bid(b) is not None
    assert bid(b) is None  # 2400 + 2400 + 2400 > 6000
    assert notice(b, first["burl"], "1.0") == 200  # 1000 of the 2400 held is booked
    assert bid(b) is not None  # 1000 + 2400 + 2400 <= 6000
    assert b.budget.stats()["campaign:c1:total"]["spend"] == 0.001


def test_unanswered_bids_are_released_after_the_expiry(make_bidder, wall) -> None:
    b = make_bidder(campaigns(small(0.005)))
    assert bid(b) and bid(b) and bid(b) is None
    wall.t += b.settings.bid_ttl
    assert bid(b) is not None


def test_a_bid_id_reads_back_as_the_serial_its_reservation_was_held_under(make_bidder) -> None:
    b = make_bidder(campaigns(small(1.0)))
    serials: list[int] = []
    admit = b.budget.admit

    def spy(campaign: int, key: int, micros: int, serial: int) -> str | None:
        serials.append(serial)
        return admit(campaign, key, micros, serial)

    b.budget.admit = spy
    bids = [bid(b) for _ in range(40)]
    assert [b.budget._serial(won["id"]) for won in bids] == serials  # past 9, hex and decimal differ
    assert len(set(serials)) == 40 and max(serials) > 15
    for won in bids:
        assert notice(b, won["lurl"], "") == 200
    assert b.budget.stats()["campaign:c1:total"]["reserved"] == 0


def test_a_repeated_loss_notice_gives_the_budget_back_once(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.005)))
    first = bid(b)
    assert first and bid(b) and bid(b) is None
    assert notice(b, first["lurl"], "") == 200
    assert notice(b, first["lurl"], "") == 200  # exchanges repeat notices
    assert bid(b) is not None  # the room the loss gave back
    assert bid(b) is None  # and no more


def test_a_loss_after_the_bill_keeps_the_spend(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.005)))
    first = bid(b)
    assert first and bid(b)
    assert notice(b, first["burl"], "2.4") == 200
    assert notice(b, first["lurl"], "") == 200
    assert bid(b) is None  # 2400 billed + 2400 held
    assert b.budget.stats()["campaign:c1:total"]["spend"] == 0.0024


def test_a_loss_for_test_traffic_gives_back_nothing(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.005)))
    trial = json.loads(BANNER)
    trial["test"] = 1
    tried = bid(b, json.dumps(trial).encode())  # bid, but nothing reserved
    assert tried and bid(b) and bid(b) and bid(b) is None
    assert notice(b, tried["lurl"], "") == 200
    assert bid(b) is None


def test_a_notice_for_a_bid_made_before_a_restart_frees_nothing_held_now(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.005)))
    old = bid(b)
    b.close()
    again = make_bidder(campaigns(small(0.005)))  # the same second: the same expiry in its notice URLs
    assert old and bid(again) and bid(again) and bid(again) is None
    assert notice(again, old["lurl"], "") == 200
    assert bid(again) is None
    assert notice(again, old["burl"], "1.0") == 200  # booked in full, as late
    total = again.budget.stats()["campaign:c1:total"]
    assert (total["spend"], total["late"]) == (0.001, 1)


def test_a_reload_that_changes_a_campaigns_budgets_frees_none_of_the_new_ones(make_bidder) -> None:
    b = make_bidder(campaigns(small(1.0)))
    before = bid(b)  # held in the lifetime budget only
    b.engine.load(campaigns(campaign(budget={"total": 1.0, "daily": 0.003})))  # room for one 2400 bid a day
    assert before and bid(b) and bid(b) is None
    assert notice(b, before["lurl"], "") == 200  # its bid held nothing in the daily budget
    assert bid(b) is None
    assert b.budget.stats()["campaign:c1:daily"]["reserved"] == 0.0024


@pytest.mark.parametrize("cur", ["EUR", "JPY", "KRW"])
def test_a_bid_in_another_currency_gives_back_exactly_what_it_reserved(make_bidder, cur: str) -> None:
    b = make_bidder(campaigns(small(1.0)))
    r = json.loads(BANNER)
    r["cur"] = [cur]
    won, lost = bid(b, json.dumps(r).encode()), bid(b, json.dumps(r).encode())
    assert won and lost
    assert notice(b, lost["lurl"], "") == 200
    assert notice(b, won["burl"], str(won["price"])) == 200
    total = b.budget.stats()["campaign:c1:total"]
    assert total["reserved"] == 0 and total["overruns"] == 0 and total["late"] == 0


@given(micros=st.integers(0, 10**12), cur=st.sampled_from(sorted(fx.RATES)))
def test_a_notice_reads_back_exactly_what_its_bid_reserved(micros: int, cur: str) -> None:
    """The engine reserves ``micros // 1000`` for a USD bid, which it writes as ``repr(micros / 1e6)``, and
    ``held_micros`` of the price it writes for any other currency; the notice reads the written price."""
    rate = fx.RATES[cur]
    if rate == 1.0:
        assert fx.held_micros(float(repr(micros / 1e6)), rate) == micros // 1000
    else:
        price = fx.from_usd_micros(micros, rate)
        assert fx.held_micros(float(repr(price)), rate) == fx.held_micros(price, rate)


def test_a_bid_leaves_nothing_behind_in_memory(make_bidder, wall) -> None:
    b = make_bidder(campaigns(small(1_000_000.0)))
    for _ in range(700):  # warm: every slot of an expiry has been opened (and the oldest given back)
        wall.t += 1.0
        assert bid(b)

    def bids() -> None:
        for i in range(10_000):
            if i % 20 == 0:
                wall.t += 1.0
            assert b.engine.bid(BANNER).status == 200

    assert grown_by(bids) < 50_000  # reserved one by one (before shield.Holds), these bids kept 2.2 MB
    assert b.budget.stats()["campaign:c1:total"]["reserved"] > 0


def test_a_refused_campaign_steps_aside_for_the_next_best(make_bidder) -> None:
    rich = campaign(id="poor-but-high", budget={"total": 0.001},
                    bid={"max_cpm": 9.0, "value_per_conversion": 10.0, "conversion_rate": 0.0006})
    other = campaign(id="other")
    b = make_bidder(campaigns(rich, other))
    got = bid(b)
    assert got is not None and got["cid"] == "other"
    assert b.stats.campaigns["poor-but-high"].no_bid["budget"] == 1


def test_platform_window_cap_is_shared_by_the_platforms_campaigns(make_bidder) -> None:
    a = campaign(id="a", platform="meta")
    c = campaign(id="c", platform="meta")
    b = make_bidder(campaigns(a, c), platform_budgets="meta=0.005")  # $0.005 per 10 minutes
    assert bid(b) and bid(b)
    assert bid(b) is None
    assert "platform:meta" in b.budget.stats()


def test_daily_budget_caps_a_day(make_bidder, wall) -> None:
    b = make_bidder(campaigns(campaign(budget={"total": 100.0, "daily": 0.005})))
    first = bid(b)
    assert notice(b, first["burl"], "2.4") == 200
    assert bid(b) is not None  # 2400 + 2400 <= 5000
    assert bid(b) is None
    wall.t += 86400 + 1
    assert bid(b) is not None


def test_spend_booked_before_a_restart_still_counts(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.005)))
    first = bid(b)
    assert notice(b, first["burl"], "2.4") == 200
    b.close()
    again = make_bidder(campaigns(small(0.005)))
    assert bid(again) is not None  # 2400 booked before the restart + 2400 held now <= 5000
    assert bid(again) is None  # without the booked 2400 this one would fit


class Broken:
    """A model that fails after ``good`` calls."""

    version = "broken-1"

    def __init__(self, good: int) -> None:
        self.good = good
        self.prior = PriorModel()

    def bind(self, lines: Lines) -> Scorer:
        inner = self.prior.bind(lines)
        model = self

        class S:
            def values(self, cand: NDArray[np.int32], n: int, ctx: Context, out: NDArray[np.float64]) -> None:
                if model.good <= 0:
                    raise RuntimeError("model down")
                model.good -= 1
                inner.values(cand, n, ctx, out)

            def explain(self, line: int, ctx: Context) -> tuple[float, float]:
                return inner.explain(line, ctx)

        return S()


def test_failing_model_opens_the_breaker_and_fallback_bids_take_over(make_bidder, wall) -> None:
    model = Broken(good=5)
    b = make_bidder(campaigns(campaign(budget={"total": 1000.0})))
    b.engine.load(b.engine.index.campaigns, model)
    ai = [bid(b) for _ in range(5)]
    assert all(x and x["ext"]["rtb"]["source"] == "ai" for x in ai)
    for _ in range(3):  # three failures in a row open the breaker; each of these falls back
        got = bid(b)
        assert got and got["ext"]["rtb"]["source"] == "fallback"
    assert str(b.breaker.state) == "open"
    got = bid(b)  # open: the model is not even called
    assert got["ext"]["rtb"]["source"] == "fallback"
    # median of the AI values (3.0 CPM) x openrtb multiplier 1.0, shaded for first price: 2.4
    assert got["price"] == ai[0]["price"]
    status = json.loads(b.status()[2])
    assert status["decisions"]["fallback"] == 4 and status["breaker"]["state"] == "open"
    metrics = b.metrics()[2].decode()
    assert 'rtb_decisions_total{source="fallback"} 4.0' in metrics
    assert 'rtb_breaker_state{state="open"} 1.0' in metrics
    model.good = 100
    wall.t += 30  # reset timeout: half-open, probes succeed, it closes
    assert bid(b)["ext"]["rtb"]["source"] == "ai"
    assert bid(b)["ext"]["rtb"]["source"] == "ai"
    assert str(b.breaker.state) == "closed"
    assert b.stats.events["breaker.state_changed"] >= 3
    kinds = [e["kind"] for e in json.loads(b.events("after=0")[2])["events"]]
    assert "breaker.state_changed" in kinds


def test_fallback_without_history_does_not_bid(make_bidder) -> None:
    b = make_bidder(campaigns(campaign()))
    b.engine.load(b.engine.index.campaigns, Broken(good=0))
    assert bid(b) is None
    assert b.stats.decisions["fallback_empty"] >= 1


class Slow:
    """The prior model, taking 6 ms of the injected clock per call."""

    version = "slow-1"

    def __init__(self, clock) -> None:
        self.clock = clock

    def bind(self, lines: Lines) -> Scorer:
        inner = PriorModel().bind(lines)
        clock = self.clock

        class S:
            def values(self, cand: NDArray[np.int32], n: int, ctx: Context, out: NDArray[np.float64]) -> None:
                clock.advance(0.006)
                inner.values(cand, n, ctx, out)

            def explain(self, line: int, ctx: Context) -> tuple[float, float]:
                return inner.explain(line, ctx)

        return S()


def test_slow_model_counts_as_bad(make_bidder, wall) -> None:
    b = make_bidder(campaigns(campaign(budget={"total": 1000.0})), model_budget_ms=5.0)
    b.engine.load(b.engine.index.campaigns, Slow(wall))
    for _ in range(3):  # answered, but each call overran the 5 ms budget: three open the breaker
        assert bid(b)["ext"]["rtb"]["source"] == "ai"
    assert str(b.breaker.state) == "open"
    assert bid(b)["ext"]["rtb"]["source"] == "fallback"


def test_budget_alert_at_80_percent_is_an_event(make_bidder) -> None:
    b = make_bidder(campaigns(small(0.01)))  # 10000 micros
    for _ in range(4):  # 4 x 2400 = 9600: past 80%
        bid(b)
    assert b.stats.events["budget.alert"] == 1
    events = json.loads(b.events("after=0")[2])["events"]
    alert = next(e for e in events if e["kind"] == "budget.alert")
    assert alert["campaign_id"] == "c1" and alert["data"]["utilisation"] >= 0.8


def test_a_load_that_fails_leaves_the_old_state_serving(make_bidder) -> None:
    b = make_bidder(campaigns(campaign(id="old")))

    class Unbindable:
        version = "bad-1"

        def bind(self, lines: Lines) -> Scorer:
            raise ValueError("incompatible with these lines")

    with pytest.raises(ValueError, match="incompatible"):
        b.engine.load(campaigns(campaign(id="new")), Unbindable())
    got = bid(b)
    assert got["cid"] == "old" and got["ext"]["rtb"]["model"] == "prior-1"
