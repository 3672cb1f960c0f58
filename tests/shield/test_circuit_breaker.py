import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shield import (
    REFUSED,
    BreakerState,
    BreakerStateChanged,
    CircuitBreaker,
    CircuitOpen,
    ConfigError,
    FakeClock,
    MemorySink,
)


def breaker(**kw: object) -> tuple[CircuitBreaker, FakeClock, MemorySink]:
    clock, sink = FakeClock(), MemorySink()
    return CircuitBreaker("model", clock, sink, **kw), clock, sink  # type: ignore[arg-type]


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        b.record_failure(b.allow())


def open_breaker() -> tuple[CircuitBreaker, FakeClock, MemorySink]:
    b, clock, sink = breaker()
    fail(b, 3)
    assert b.state is BreakerState.OPEN
    return b, clock, sink


def transitions(sink: MemorySink) -> list[tuple[str, str]]:
    return [(e.old, e.new) for e in sink.events if isinstance(e, BreakerStateChanged)]


def test_closed_breaker_lets_calls_through() -> None:
    b, _, sink = breaker()
    token = b.allow()
    assert token
    b.record_success(token, 0.01)
    assert b.state is BreakerState.CLOSED and sink.events == []


def test_two_bad_calls_keep_it_closed() -> None:
    b, _, _ = breaker()
    fail(b, 2)
    assert b.state is BreakerState.CLOSED
    assert b.stats().consecutive_bad == 2


def test_exactly_three_consecutive_failures_open_it() -> None:
    b, _, sink = breaker()
    fail(b, 3)
    assert b.state is BreakerState.OPEN
    assert b.allow() == REFUSED
    assert transitions(sink) == [("closed", "open")]
    event = sink.events[0]
    assert (event.kind, event.key, event.reason) == ("breaker.state_changed", "model", "3 consecutive bad calls")


def test_a_success_between_failures_resets_the_count() -> None:
    b, _, _ = breaker()
    fail(b, 2)
    b.record_success(b.allow(), 0.01)
    fail(b, 2)
    assert b.state is BreakerState.CLOSED


def test_a_call_slower_than_500_ms_is_bad_and_exactly_500_ms_is_not() -> None:
    b, _, _ = breaker()
    for _ in range(3):
        b.record_success(b.allow(), 0.5)
    assert b.state is BreakerState.CLOSED
    for _ in range(3):
        b.record_success(b.allow(), 0.5001)
    assert b.state is BreakerState.OPEN
    assert b.stats().bad_calls == 3


def test_open_breaker_refuses_until_the_reset_timeout() -> None:
    b, clock, _ = open_breaker()
    clock.advance(29.999)
    assert b.allow() == REFUSED
    clock.advance(0.001)  # exactly 30 s
    assert b.allow()
    assert b.state is BreakerState.HALF_OPEN
    assert b.stats().refused == 1  # the one at 29.999 s


def test_half_open_lets_at_most_two_probes_run_at_once() -> None:
    b, clock, _ = open_breaker()
    clock.advance(30.0)
    first, second = b.allow(), b.allow()
    assert first and second and first != second
    assert b.allow() == REFUSED
    b.record_success(first, 0.01)  # frees a slot but one success does not close it
    assert b.state is BreakerState.HALF_OPEN
    third = b.allow()
    assert third
    assert b.allow() == REFUSED


def test_two_consecutive_good_probes_close_it() -> None:
    b, clock, sink = open_breaker()
    clock.advance(30.0)
    p1, p2 = b.allow(), b.allow()
    b.record_success(p1, 0.01)
    b.record_success(p2, 0.01)
    assert b.state is BreakerState.CLOSED
    assert transitions(sink) == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    fail(b, 2)  # counting starts from scratch
    assert b.state is BreakerState.CLOSED


@pytest.mark.parametrize("bad_probe", ["exception", "slow"])
def test_any_bad_probe_reopens_it_for_another_timeout(bad_probe: str) -> None:
    b, clock, sink = open_breaker()
    clock.advance(30.0)
    p1, p2 = b.allow(), b.allow()
    b.record_success(p1, 0.01)
    if bad_probe == "exception":
        b.record_failure(p2)
    else:
        b.record_success(p2, 0.6)
    assert b.state is BreakerState.OPEN
    clock.advance(29.0)
    assert b.allow() == REFUSED
    clock.advance(1.0)
    assert b.allow()
    assert transitions(sink)[-2:] == [("half_open", "open"), ("open", "half_open")]


def test_probe_still_in_flight_when_the_timeout_passes_reopens_and_its_late_result_is_ignored() -> None:
    b, clock, _ = open_breaker()
    clock.advance(30.0)
    stuck = b.allow()
    assert stuck
    clock.advance(30.0)  # the probe never came back; it is far past the slow-call limit
    assert b.allow() == REFUSED
    assert b.state is BreakerState.OPEN
    b.record_success(stuck, 0.01)  # comes back at last: not evidence for the new state
    assert b.state is BreakerState.OPEN
    clock.advance(30.0)
    p1, p2 = b.allow(), b.allow()
    b.record_success(p1, 0.01)
    b.record_success(p2, 0.01)
    assert b.state is BreakerState.CLOSED


def test_probe_within_the_slow_limit_is_not_overdue() -> None:
    b, clock, _ = open_breaker()
    clock.advance(30.0)
    p1, p2 = b.allow(), b.allow()
    clock.advance(0.5)
    assert b.allow() == REFUSED  # both slots busy, neither overdue
    assert b.state is BreakerState.HALF_OPEN
    b.record_success(p1, 0.5)
    b.record_success(p2, 0.5)
    assert b.state is BreakerState.CLOSED


def test_a_call_admitted_while_closed_does_not_count_as_a_probe() -> None:
    b, clock, _ = breaker()
    early = b.allow()  # a long call starts while closed
    fail(b, 3)
    clock.advance(30.0)
    probe = b.allow()
    b.record_success(early, 0.01)  # returns during half-open
    b.record_success(probe, 0.01)
    assert b.state is BreakerState.HALF_OPEN  # one probe success only
    b.record_failure(early)  # a stale failure cannot re-open it either
    assert b.state is BreakerState.HALF_OPEN


def test_forced_open_refuses_until_reset_even_after_the_timeout() -> None:
    b, clock, sink = breaker()
    b.force_open()
    clock.advance(3600.0)
    assert b.allow() == REFUSED
    assert b.state is BreakerState.FORCED_OPEN
    b.reset()
    assert b.allow() and b.state is BreakerState.CLOSED
    assert transitions(sink) == [("closed", "forced_open"), ("forced_open", "closed")]


def test_disabled_breaker_passes_everything_and_counts_nothing() -> None:
    b, _, _ = breaker()
    b.disable()
    fail(b, 10)
    b.record_success(b.allow(), 10.0)
    assert b.state is BreakerState.DISABLED
    assert b.stats().bad_calls == 0


def test_reset_of_a_closed_breaker_clears_counts_without_an_event() -> None:
    b, _, sink = breaker()
    fail(b, 2)
    b.reset()
    fail(b, 2)
    assert b.state is BreakerState.CLOSED and sink.events == []


def test_thresholds_are_configurable() -> None:
    b, clock, _ = breaker(
        failure_threshold=5, slow_call_seconds=0.1, reset_timeout=2.0, half_open_max_calls=1, success_threshold=3
    )
    for _ in range(4):
        b.record_success(b.allow(), 0.2)
    assert b.state is BreakerState.CLOSED
    fail(b)
    assert b.state is BreakerState.OPEN
    clock.advance(2.0)
    for _ in range(2):
        p = b.allow()
        assert b.allow() == REFUSED  # one probe at a time
        b.record_success(p, 0.01)
    assert b.state is BreakerState.HALF_OPEN
    b.record_success(b.allow(), 0.01)
    assert b.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "kw",
    [{"failure_threshold": 0}, {"success_threshold": 0}, {"half_open_max_calls": 0}, {"reset_timeout": 0}],
)
def test_bad_thresholds_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="breaker 'model'"):
        breaker(**kw)


def test_call_runs_the_function_and_counts_exceptions_and_slowness() -> None:
    b, clock, _ = breaker()
    assert b.call(lambda x: x + 1, 1) == 2

    def boom() -> None:
        raise RuntimeError("model broke")

    def slow() -> int:
        clock.advance(0.7)
        return 1

    for _ in range(2):
        with pytest.raises(RuntimeError):
            b.call(boom)
    assert b.call(slow) == 1  # the result still comes back, but the call was bad
    assert b.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen, match="'model' is open"):
        b.call(lambda: 1)


def test_acall_guards_coroutines() -> None:
    b, _, _ = breaker()

    async def ok(x: int) -> int:
        return x * 2

    async def boom() -> int:
        raise ValueError("nope")

    async def scenario() -> None:
        assert await b.acall(ok, 21) == 42
        for _ in range(3):
            with pytest.raises(ValueError):
                await b.acall(boom)
        with pytest.raises(CircuitOpen):
            await b.acall(ok, 1)

    asyncio.run(scenario())
    assert b.state is BreakerState.OPEN


def test_no_lock_is_held_while_the_guarded_call_runs() -> None:
    b, clock, _ = breaker()
    held: list[bool] = []

    def probe_lock() -> None:
        held.append(b._lock.locked())

    b.call(probe_lock)
    fail(b, 3)
    clock.advance(30.0)
    b.call(probe_lock)  # as a half-open probe
    assert held == [False, False]


LEGAL = {
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "open"),
    ("half_open", "closed"),
}


@given(st.lists(st.tuples(st.sampled_from(["allow", "ok", "slow", "fail", "wait"]), st.floats(0, 40)), max_size=80))
@settings(max_examples=200, deadline=None)
def test_breaker_only_takes_legal_transitions_and_never_runs_more_than_two_probes(
    steps: list[tuple[str, float]],
) -> None:
    b, clock, sink = breaker()
    tokens: list[int] = []
    for op, x in steps:
        if op == "allow":
            token = b.allow()
            if token:
                tokens.append(token)
        elif op == "wait":
            clock.advance(x)
        elif tokens:
            token = tokens.pop(int(x) % len(tokens))
            if op == "fail":
                b.record_failure(token)
            else:
                b.record_success(token, 0.01 if op == "ok" else 0.6)
        if b.state is BreakerState.HALF_OPEN:
            assert sum(t is not None for t in b._probes) <= 2
    assert set(transitions(sink)) <= LEGAL
