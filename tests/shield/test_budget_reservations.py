import gc

import pytest

from shield import BudgetManager, DuplicateReservation, FakeClock


def manager(cap: int = 1000, **kw: object) -> tuple[BudgetManager, FakeClock]:
    clock = FakeClock()
    return BudgetManager(cap, clock=clock, **kw), clock  # type: ignore[arg-type]


def test_reservation_holds_budget_until_released() -> None:
    b, _ = manager()
    assert b.reserve("b1", 600)
    assert not b.try_spend(401)
    assert not b.reserve("b2", 401)
    assert b.release("b1")
    assert b.try_spend(1000)
    s = b.stats()
    assert (s.accepted, s.rejected, s.releases, s.reserved) == (2, 2, 1, 0)


def test_commit_turns_the_reservation_into_spend_and_returns_the_rest() -> None:
    b, _ = manager()
    assert b.reserve("b1", 600)
    b.commit("b1", 250)
    s = b.stats()
    assert (s.spend, s.reserved, s.commits, s.overruns, s.late_commits) == (250, 0, 1, 0, 0)
    assert b.try_spend(750)
    assert not b.try_spend(1)


def test_committed_money_stays_in_the_window_of_the_bid() -> None:
    b, clock = manager()
    assert b.reserve("b1", 600)
    clock.advance(300.0)
    b.commit("b1", 600)
    clock.advance(301.0)  # 601 s after the bid, 301 s after the commit
    assert b.stats().spend == 0


def test_release_of_unknown_bid_returns_false_and_changes_nothing() -> None:
    b, _ = manager()
    assert b.try_spend(10)
    assert not b.release("nope")
    assert b.stats().spend == 10


def test_second_live_reservation_for_the_same_bid_is_refused() -> None:
    b, _ = manager(key="campaign:c1:window")
    assert b.reserve("b1", 10)
    with pytest.raises(DuplicateReservation, match="campaign:c1:window.*'b1'"):
        b.reserve("b1", 10)
    assert b.stats().reserved == 10
    b.release("b1")
    assert b.reserve("b1", 10)  # free again once released


def test_reservation_expires_after_ten_minutes_by_default() -> None:
    b, clock = manager()
    assert b.reserve("b1", 1000)
    clock.advance(599.999)
    assert b.stats().reserved == 1000
    clock.advance(0.001)  # exactly 600 s
    s = b.stats()
    assert (s.reserved, s.expired, s.live_reservations, s.spend) == (0, 1, 0, 0)
    assert b.try_spend(1000)


def test_reservation_expiry_is_configurable() -> None:
    b, clock = manager(expiry_seconds=5.0)
    assert b.reserve("b1", 1000)
    clock.advance(5.0)
    assert b.try_spend(1000)
    assert b.stats().expired == 1


def test_many_reservations_expire_together_in_one_sweep() -> None:
    b, clock = manager(cap=10_000, expiry_seconds=10.0)
    for i in range(1000):
        assert b.reserve(f"b{i}", 10)
    assert not b.can_spend(1)
    clock.advance(10.0)
    s = b.stats()
    assert (s.expired, s.live_reservations, s.reserved) == (1000, 0, 0)


def test_expired_reservation_commit_is_still_booked_as_late() -> None:
    b, clock = manager()
    assert b.reserve("b1", 400)
    clock.advance(700.0)
    b.commit("b1", 400)
    s = b.stats()
    assert (s.spend, s.late_commits, s.late_micros, s.commits) == (400, 1, 400, 1)


def test_commit_of_an_unknown_bid_books_the_money_even_past_the_cap() -> None:
    b, _ = manager()
    assert b.try_spend(1000)
    b.commit("never-reserved", 300)
    s = b.stats()
    assert (s.spend, s.late_commits, s.booked_micros) == (1300, 1, 1300)


def test_cost_above_the_reservation_is_booked_in_full_as_an_overrun() -> None:
    b, _ = manager()
    assert b.reserve("b1", 500)
    assert b.try_spend(500)
    b.commit("b1", 700)
    s = b.stats()
    assert (s.spend, s.overruns, s.overrun_micros) == (1200, 1, 200)


def test_released_and_committed_reservations_leave_nothing_behind() -> None:
    b, clock = manager(cap=10**9)
    for i in range(10_000):
        assert b.reserve(f"b{i}", 1)
        if i % 2:
            b.release(f"b{i}")
        else:
            b.commit(f"b{i}", 1)
        clock.advance(0.37)
    s = b.stats()
    assert (s.live_reservations, s.reserved) == (0, 0)
    assert len(b._buckets) == 601  # the ring never grows


def test_a_reused_bid_id_expires_once_at_its_newest_deadline() -> None:
    b, clock = manager(cap=10_000, window_seconds=None, expiry_seconds=10.0)
    assert b.reserve("b1", 100)
    b.release("b1")
    clock.advance(5.0)
    assert b.reserve("b1", 200)  # the first reservation's queue entry is still waiting at t=10
    clock.advance(5.0)
    s = b.stats()  # t=10: the old entry must not expire the new reservation
    assert (s.reserved, s.expired, s.live_reservations) == (200, 0, 1)
    clock.advance(5.0)
    s = b.stats()
    assert (s.reserved, s.expired, s.live_reservations) == (0, 1, 0)


def test_closed_reservations_are_not_expired_again() -> None:
    b, clock = manager(cap=10_000, window_seconds=None, expiry_seconds=10.0)
    assert b.reserve("won", 100) and b.reserve("lost", 100) and b.reserve("silent", 100)
    b.commit("won", 80)
    b.release("lost")
    clock.advance(10.0)
    s = b.stats()
    assert (s.spend, s.reserved, s.expired, s.releases, s.live_reservations) == (80, 0, 1, 1, 0)


def test_a_hundred_thousand_open_reservations_are_all_found_and_expired() -> None:
    b, clock = manager(cap=10**9, window_seconds=None, expiry_seconds=60.0)
    for i in range(100_000):
        assert b.reserve(f"bid-{i:x}", 3)
        if i % 10_000 == 0:
            clock.advance(1.0)
    assert b.stats().live_reservations == 100_000
    for i in range(0, 100_000, 2):  # half are won: every one is found, wherever its shard
        b.commit(f"bid-{i:x}", 3)
    clock.advance(60.0)
    s = b.stats()
    assert (s.spend, s.reserved, s.expired, s.commits, s.live_reservations) == (150_000, 0, 50_000, 50_000, 0)


def test_expiry_walks_the_queue_across_chunks_and_the_newest_ids() -> None:
    b, clock = manager(cap=10**9, window_seconds=None, expiry_seconds=10.0)
    for i in range(1000):  # several full chunks of the expiry queue, then a partial one
        assert b.reserve(f"old-{i}", 1)
    clock.advance(5.0)
    for i in range(300):
        assert b.reserve(f"new-{i}", 1)
    clock.advance(5.0)  # the old ones are due, the new ones are not
    s = b.stats()
    assert (s.expired, s.reserved, s.live_reservations) == (1000, 300, 300)
    assert b.reserve("newest", 1)  # the queue keeps going after an expiry in the middle of a chunk
    clock.advance(5.0)
    s = b.stats()
    assert (s.expired, s.reserved, s.live_reservations) == (1300, 1, 1)
    clock.advance(5.0)
    s = b.stats()
    assert (s.expired, s.reserved, s.live_reservations) == (1301, 0, 0)


def test_a_reused_id_does_not_hold_back_the_expiry_of_those_behind_it() -> None:
    # Found by the property test: bid-0's first place in the expiry queue comes before bid-1's, and its
    # new reservation expires later; bid-1 must still go at its own deadline.
    b, clock = manager(cap=10_000, window_seconds=None, expiry_seconds=600.0)
    assert b.reserve("bid-0", 1)
    b.release("bid-0")
    assert b.reserve("bid-1", 1)
    clock.advance(599.0)
    assert b.reserve("bid-0", 1)
    clock.advance(1.0)
    s = b.stats()
    assert (s.reserved, s.expired, s.live_reservations) == (1, 1, 1)


def test_open_reservations_add_nothing_for_the_garbage_collector_to_walk() -> None:
    # They pile up to bid rate x expiry. When each was a tracked tuple, every insertion put its shard
    # back among the tracked objects, and every full collection (and the young ones after it) walked all
    # of them: a bidder under load paused for 50-90 ms.
    b, clock = manager(cap=10**12, window_seconds=600.0, expiry_seconds=600.0)
    gc.collect()
    gc.collect()
    before = len(gc.get_objects())
    ids = [f"bid-{i:x}" for i in range(20_000)]
    for i, bid_id in enumerate(ids):
        assert b.reserve(bid_id, 6048)
        if i % 1000 == 0:
            clock.advance(1.0)  # across buckets: the entries' slots differ
    sample = ids[::97]
    assert not [o for o in gc.get_objects() if type(o) is dict and any(i in o for i in sample)]
    gc.collect()
    gc.collect()  # a tuple of tuples is untracked on the second pass
    assert len(gc.get_objects()) - before < 100  # the expiry queue's chunks are not tracked either
    assert b.stats().reserved == 20_000 * 6048


def test_amounts_and_slots_come_back_exactly_from_the_packed_entry() -> None:
    b, clock = manager(cap=10**16, window_seconds=600.0, expiry_seconds=300.0)
    assert b.reserve("big", 10**15 + 7)
    clock.advance(1.0)
    assert b.reserve("small", 3)
    b.commit("big", 10**15)  # 7 micros come back to the first bucket
    clock.advance(300.0)  # "small" expires; "big" was committed
    s = b.stats()
    assert (s.spend, s.reserved, s.expired, s.overruns) == (10**15, 0, 1, 0)
    clock.advance(300.0)  # the first bucket leaves the window, with exactly what was booked in it
    assert b.stats().spend == 0
