"""The budget gate's admission in C (``BudgetGate.admit``, ``bidder/_admit.c``) against its Python twin
(``admit_py``): two gates built alike, one driven through each, must answer alike and hold alike.

The C admission does only the common case itself (no refusal, no alert, no window to catch up, the
current slot) and leaves everything else to the shield's Python methods; so the twins are compared on
sequences of bids, notices and clock moves that reach every one of those cases, and the state compared
is every slot of every budget, pacer and slot of the holds, not what their ``stats()`` would show after
catching up.
"""

from __future__ import annotations

import gc
import itertools
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidder._native import Admit
from bidder.budget import BudgetGate
from bidder.index import Index
from shield import BudgetManager, FakeClock, Holds, MemorySink
from tests.bidder.conftest import campaign, campaigns

TTL = 300  # seconds: the holds' slots are then 5 s
NOT_STATE = {"_lock", "_clock", "_now", "_time", "_sink"}  # the objects' parts that are not money or counts


class Twins:
    """Two gates over the same campaigns, clocks and random draws; bids go to ``c`` through the C
    admission and to ``py`` through ``admit_py``."""

    def __init__(self, camps: list[dict[str, Any]], platform_caps: dict[str, int], seed: int) -> None:
        self.camps = camps
        self.clocks = [FakeClock(monotonic=1000.0, wall=1_795_012_200.0) for _ in range(2)]
        self.sinks = [MemorySink() for _ in range(2)]
        self.c, self.py = (BudgetGate(clock, sink, {}, {}, platform_caps, TTL, random.Random(seed).random)
                           for clock, sink in zip(self.clocks, self.sinks, strict=True))
        self.rebind()
        self.serials = itertools.count(1)
        self.bids: list[tuple[str, int, int, int]] = []  # campaign id, serial, key, micros reserved

    def key(self, ahead: int) -> int:
        return int(self.clocks[0].time()) + TTL + ahead

    def admit(self, ci: int, ahead: int, micros: int) -> tuple[str | None, str | None]:
        serial, key = next(self.serials), self.key(ahead)
        got = self.c.admit(ci, key, micros, serial), self.py.admit_py(ci, key, micros, serial)
        if got[0] is None:
            self.bids.append((self.camps[ci]["id"], serial, key, micros))
        return got

    def notice(self, i: int, price: int | None) -> None:
        """A billing notice at ``price`` micros (None: a loss notice) for the ``i``-th bid admitted."""
        cid, serial, key, micros = self.bids[i % len(self.bids)]
        for gate in (self.c, self.py):
            bid_id = f"{gate.prefix}{serial:x}"
            if price is None:
                gate.release(cid, bid_id, key, micros)
            else:
                gate.commit(cid, bid_id, key, micros, price)

    def advance(self, seconds: float) -> None:
        for clock in self.clocks:
            clock.advance(seconds)

    def rebind(self) -> None:
        """Both gates adopt new indexes of the same campaigns, as a campaign reload does."""
        self.indexes = [Index(campaigns(*self.camps), "seat") for _ in range(2)]
        self.c.bind(self.indexes[0])
        self.py.bind(self.indexes[1])

    def state(self, i: int) -> object:
        gate = (self.c, self.py)[i]
        return (state_of(gate), self.indexes[i].live, [(type(e).__name__, e) for e in self.sinks[i].events])


def slots(o: object) -> dict[str, object]:
    return {name: getattr(o, name) for name in type(o).__slots__ if name not in NOT_STATE}  # type: ignore[attr-defined]


def state_of(gate: BudgetGate) -> object:
    """Every budget's, pacer's and held slot's state, with groups named by their budgets' keys."""
    holds = gate._holds
    named = {k: {tuple(m.key for m in g): v for g, v in slot.held.items()} | {"first": slot.first,
             "closed": bytes(slot.closed), "last": slot.last} for k, slot in holds._slots.items()}
    return ({key: slots(m) for key, m in gate._budgets._managers.items()},
            {cid: slots(p) for cid, p in gate._pacers.items()},
            named, slots(holds) | {"_slot": None, "_slots": None})


# Budgets small enough for refusals and alerts: a bid reserves 100 to 60,000 micros.
usd = st.sampled_from([0.05, 0.1, 0.2, 0.5, 1.0])


@st.composite
def a_campaign(draw: st.DrawFn, i: int) -> dict[str, Any]:
    budget: dict[str, Any] = {"total": draw(usd)}
    if draw(st.booleans()):
        budget["daily"] = draw(usd)
        budget["pacing"] = draw(st.sampled_from(["even", "asap"]))
    if draw(st.booleans()):
        budget["window"] = draw(usd)
    return campaign(id=f"c{i}", budget=budget, platform=draw(st.sampled_from(["openrtb", "meta", "tiktok"])))


admit = st.tuples(st.just("admit"), st.integers(0, 3), st.sampled_from([0, 0, 0, 1, 7, -400]),
                  st.sampled_from([100, 2_400, 2_400, 9_999, 60_000]))
bill = st.tuples(st.just("bill"), st.integers(0, 50), st.sampled_from([0, 1_000, 2_400, 70_000]))
op = st.one_of(
    admit, admit, admit, admit, bill, bill,
    st.tuples(st.just("loss"), st.integers(0, 50)),
    st.tuples(st.just("advance"), st.sampled_from([0.4, 3.0, 61.0, 61.0, 301.0, 700.0, 86_400.0])),
    st.tuples(st.just("rebind")),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(camps=st.integers(1, 4).flatmap(lambda n: st.tuples(*(a_campaign(i) for i in range(n)))),
       caps=st.fixed_dictionaries({}, optional={"meta": st.sampled_from([50_000, 300_000])}),
       seed=st.integers(0, 2**32 - 1), ops=st.lists(op, min_size=10, max_size=80))
def test_the_c_admission_answers_and_holds_as_its_twin(camps: tuple[dict[str, Any], ...], caps: dict[str, int],
                                                        seed: int, ops: list[tuple[Any, ...]]) -> None:
    t = Twins(list(camps), caps, seed)
    for o in ops:
        if o[0] == "admit":
            got, want = t.admit(o[1] % len(camps), o[2], o[3])
            assert got == want, o
        elif t.bids and o[0] in ("bill", "loss"):
            t.notice(o[1], o[2] if o[0] == "bill" else None)
        elif o[0] == "advance":
            t.advance(o[1])
        elif o[0] == "rebind":
            t.rebind()
        assert t.state(0) == t.state(1), o


def test_the_common_case_is_held_in_c_and_the_rest_by_the_shield() -> None:
    """A campaign whose total budget fits 4 bids of 2,400 micros, alerting at 80%: the first three bids are
    held in C; the fourth crosses the alert level and the fifth is refused, both by the Python methods;
    a bid in a new slot opens it in Python, the next one in that slot is held in C again."""
    t = Twins([campaign(id="c0", budget={"total": 0.01})], {}, 1)
    admit = t.c.admit
    for n in range(3):
        assert t.admit(0, 0, 2_400) == (None, None)
        assert admit.fast == n  # the first opened the slot, in Python
    assert t.admit(0, 0, 2_400) == (None, None)  # 9,600 of 10,000: the alert
    assert [e.kind for e in t.sinks[0].events] == ["budget.alert"] and admit.fast == 2
    assert t.admit(0, 0, 2_400) == ("budget", "budget") and admit.fast == 2
    t.notice(0, None)  # a loss gives 2,400 back
    t.advance(6.0)  # the next slot
    assert t.admit(0, 0, 100) == (None, None) and admit.fast == 2
    assert t.admit(0, 0, 100) == (None, None) and admit.fast == 3
    assert t.state(0) == t.state(1)


def test_a_slots_first_bid_held_in_c_is_its_first() -> None:
    """A new slot whose first bid is refused holds nothing: the next bid, held in C, is the slot's first,
    from whose serial its notices are found."""
    t = Twins([campaign(id="c0", budget={"total": 0.05})], {}, 1)
    assert t.admit(0, 0, 60_000) == ("budget", "budget")  # opens the slot
    assert t.admit(0, 0, 100) == (None, None) and t.c.admit.fast == 1
    assert t.c._holds._slot.first == t.bids[0][1]
    t.notice(0, 100)
    assert t.c._budgets._managers["campaign:c0:total"].stats().spend == 100
    assert t.state(0) == t.state(1)

def test_a_budget_due_to_catch_up_is_left_to_the_shield() -> None:
    """A window cap whose oldest bucket is due to leave: the C admission does not hold against it."""
    t = Twins([campaign(id="c0", budget={"total": 1.0, "window": 1.0})], {}, 1)
    t.admit(0, 0, 100)
    t.admit(0, 0, 100)
    fast = t.c.admit.fast
    t.advance(1.0)  # the window's next bucket: every budget with buckets is due
    assert t.admit(0, 0, 100) == (None, None) and t.c.admit.fast == fast
    assert t.admit(0, 0, 100) == (None, None) and t.c.admit.fast == fast + 1
    assert t.state(0) == t.state(1)


def test_a_pacer_due_for_its_update_is_asked_in_python() -> None:
    t = Twins([campaign(id="c0", budget={"total": 10.0, "daily": 1.0})], {}, 7)
    pacer = t.c._pacers["c0"]
    answers = []
    for _ in range(3):
        t.advance(60.0)  # a pacing slot: the pacer updates before it answers
        assert pacer._next_update <= t.clocks[0].time()
        answers.append(t.admit(0, 0, 100))
    assert all(a == b for a, b in answers)
    assert t.state(0) == t.state(1)


@pytest.mark.parametrize("which", ["holds", "total", "daily"])
def test_a_lock_held_by_another_thread_leaves_the_bid_to_the_shield(monkeypatch: pytest.MonkeyPatch,
                                                                     which: str) -> None:
    """A thread suspended inside a shield method holds its lock: the C admission must change nothing and
    leave the bid to the Python method (which would wait for the lock; here it only records the call)."""
    t = Twins([campaign(id="c0", budget={"total": 1.0, "daily": 1.0})], {}, 1)
    t.admit(0, 0, 100)  # opens the slot
    group = t.c._group[0]
    lock = t.c._holds._lock if which == "holds" else group[0 if which == "total" else 1]._lock
    deferred: list[tuple[Any, ...]] = []
    monkeypatch.setattr(Holds, "reserve", lambda self, *a: deferred.append(a) or True)
    before, fast = state_of(t.c), t.c.admit.fast
    holder = threading.Thread(target=lock.acquire)
    holder.start()
    holder.join()  # the lock is now held by a thread that is gone: as good as suspended
    try:
        assert t.c.admit.hold(group, t.key(0), 100, 99) is True
        assert deferred == [(group, t.key(0), 100, 99)]
        assert state_of(t.c) == before and t.c.admit.fast == fast
    finally:
        lock.release()
    assert t.c.admit.hold(group, t.key(0), 100, 100) is True
    assert len(deferred) == 1 and t.c.admit.fast == fast + 1


def test_objects_it_has_not_learned_go_to_the_shield(monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget of a subclass, a group that is not a tuple, an amount that is not an int, a key past
    int64, a budget twice in a group: all left to ``Holds.reserve``."""
    t = Twins([campaign(id="c0", budget={"total": 1.0})], {}, 1)
    t.admit(0, 0, 100)
    group = t.c._group[0]

    class Sub(BudgetManager):
        __slots__ = ()

    sub = Sub(10**6, None, t.clocks[0])
    deferred: list[tuple[Any, ...]] = []
    monkeypatch.setattr(Holds, "reserve", lambda self, *a: deferred.append(a) or False)
    key = t.key(0)
    cases = [((sub,), key, 100), (list(group), key, 100), (group, key, 100.0), (group, 2**63, 100),
             (group, key, -1), (group + group, key, 100), (group, key, 2**40)]
    for g, k, amount in cases:
        assert t.c.admit.hold(g, k, amount, 5) is False
    assert [a[:3] for a in deferred] == cases


def test_its_refusals() -> None:
    t = Twins([campaign(id="c0")], {}, 1)
    gate = t.c
    with pytest.raises(TypeError, match="holds must be a shield.Holds"):
        Admit([], [], object(), random.random, str)
    with pytest.raises(TypeError, match="rng and refused must be callable"):
        Admit([], [], gate._holds, 1, str)
    with pytest.raises(TypeError, match="positional arguments only"):
        Admit([], [], gate._holds, random.random, refused=str)
    with pytest.raises(TypeError, match="already initialised"):
        gate.admit.__init__([], [], gate._holds, random.random, str)
    with pytest.raises(TypeError, match="was not initialised"):
        Admit.__new__(Admit)(0, 1, 2, 3)
    with pytest.raises(TypeError, match=r"takes \(campaign, key, micros, serial\)"):
        gate.admit(0, 1, 2)
    with pytest.raises(IndexError, match="no campaign 1"):
        gate.admit(1, t.key(0), 100, 1)


def test_it_is_collected_with_its_gate() -> None:
    """The admission holds the gate's ``_refused``, and the gate holds the admission: a cycle the collector
    must be able to see."""
    t = Twins([campaign(id="c0")], {}, 1)
    admit = t.c.admit
    assert gc.is_tracked(admit)
    refs: list[Callable[..., object]] = [r for r in gc.get_referents(admit) if callable(r)]
    assert any(getattr(r, "__self__", None) is t.c for r in refs)

