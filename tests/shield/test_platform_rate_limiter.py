import pytest

from shield import DEFAULT_LIMITS, ConfigError, FakeClock, RateLimit, RateLimiter


def limiter(**kw: object) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(clock, **kw), clock  # type: ignore[arg-type]


def burst(rl: RateLimiter, platform: str, n: int) -> int:
    return sum(rl.try_acquire(platform) == 0.0 for _ in range(n))


@pytest.mark.parametrize(
    "platform, calls, per", [("google_ads", 100, 60.0), ("meta", 200, 3600.0), ("tradedesk", 300, 60.0)]
)
def test_default_limits_admit_exactly_the_limit_per_window(platform: str, calls: int, per: float) -> None:
    assert DEFAULT_LIMITS[platform] == RateLimit(calls, per)
    rl, clock = limiter()
    assert burst(rl, platform, calls + 50) == calls
    wait = rl.try_acquire(platform)
    assert wait == per
    clock.advance(per - 0.001)
    assert rl.try_acquire(platform) > 0
    clock.advance(0.001)
    assert burst(rl, platform, calls + 1) == calls


def test_refusal_says_how_long_until_the_next_call() -> None:
    rl, clock = limiter()
    rl.try_acquire("google_ads")  # t = 0
    clock.advance(10.0)
    assert burst(rl, "google_ads", 99) == 99  # t = 10
    clock.advance(5.0)
    assert rl.try_acquire("google_ads") == 45.0  # the call at t=0 leaves at t=60
    clock.advance(45.0)
    assert rl.try_acquire("google_ads") == 0.0
    assert rl.try_acquire("google_ads") == 10.0  # next to leave: the calls at t=10


def test_no_double_burst_at_a_fixed_window_edge() -> None:
    rl, clock = limiter()
    clock.advance(59.5)
    assert burst(rl, "google_ads", 100) == 100
    clock.advance(0.5)  # t = 60: a fixed one-minute window would start afresh here
    assert burst(rl, "google_ads", 100) == 0
    assert rl.try_acquire("google_ads") == 59.5
    clock.advance(59.5)  # t = 119.5: exactly 60 s after the burst
    assert burst(rl, "google_ads", 101) == 100


def test_refused_calls_do_not_use_up_the_window() -> None:
    rl, clock = limiter()
    assert burst(rl, "google_ads", 100) == 100
    for _ in range(100):
        clock.advance(0.5)
        rl.try_acquire("google_ads")
    clock.advance(10.0)  # t = 60
    assert burst(rl, "google_ads", 100) == 100
    lim = rl.limiter("google_ads")
    assert (lim.admitted, lim.refused) == (200, 100)


def test_platforms_are_limited_independently() -> None:
    rl, _ = limiter()
    assert burst(rl, "google_ads", 150) == 100
    assert burst(rl, "meta", 250) == 200
    assert burst(rl, "tradedesk", 350) == 300


def test_an_unconfigured_platform_is_refused_with_a_clear_error() -> None:
    rl, _ = limiter()
    with pytest.raises(ConfigError, match="'linkedin'.*google_ads, meta, tradedesk"):
        rl.try_acquire("linkedin")


def test_any_other_platform_can_be_configured_by_name_or_by_default() -> None:
    rl, clock = limiter(limits={"linkedin": RateLimit(10, 1.0)}, default=RateLimit(3, 60.0))
    assert burst(rl, "linkedin", 20) == 10
    assert burst(rl, "tiktok", 5) == 3
    assert burst(rl, "x", 5) == 3  # each platform gets its own window
    clock.advance(1.0)
    assert burst(rl, "linkedin", 20) == 10


def test_reconfiguring_keeps_calls_already_made() -> None:
    rl, _ = limiter()
    assert burst(rl, "google_ads", 80) == 80
    rl.configure("google_ads", RateLimit(90, 60.0))
    assert burst(rl, "google_ads", 20) == 10
    assert rl.limiter("google_ads").remaining() == 0


def test_remaining_counts_calls_left_in_the_window() -> None:
    rl, clock = limiter()
    burst(rl, "google_ads", 30)
    clock.advance(30.0)
    burst(rl, "google_ads", 20)
    assert rl.limiter("google_ads").remaining() == 50
    clock.advance(30.0)
    assert rl.limiter("google_ads").remaining() == 80


@pytest.mark.parametrize("limit", [RateLimit(0, 60.0), RateLimit(10, 0.0), RateLimit(10, -1.0)])
def test_bad_limits_are_refused(limit: RateLimit) -> None:
    with pytest.raises(ConfigError, match="'foo'"):
        RateLimiter(FakeClock(), {"foo": limit})
