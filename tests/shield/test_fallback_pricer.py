import pytest

from shield import PLATFORM_MULTIPLIERS, AmountError, ConfigError, FallbackPricer


def test_no_history_means_no_bid() -> None:
    f = FallbackPricer()
    assert f.fallback_bid("google_ads") is None
    assert f.stats().no_history == 1 and f.stats().fallback_bids == 0


def test_one_sample_is_enough() -> None:
    f = FallbackPricer()
    f.observe(2.5)
    assert f.fallback_bid("google_ads") == 2.5


@pytest.mark.parametrize("samples, median", [([3.0, 1.0, 2.0], 2.0), ([4.0, 1.0, 3.0, 2.0], 2.5), ([7.0], 7.0)])
def test_fallback_is_the_median_of_model_bids(samples: list[float], median: float) -> None:
    f = FallbackPricer()
    for s in samples:
        f.observe(s)
    assert f.median() == median


def test_only_the_last_100_predictions_count() -> None:
    f = FallbackPricer()
    for i in range(150):
        f.observe(float(i))  # keeps 50..149
    assert f.median() == 99.5
    assert f.stats().samples == 100
    for _ in range(100):
        f.observe(5.0)
    assert f.median() == 5.0


def test_new_predictions_refresh_the_median() -> None:
    f = FallbackPricer(size=3)
    for s in (1.0, 2.0, 3.0):
        f.observe(s)
    assert f.median() == 2.0
    f.observe(10.0)  # replaces 1.0
    assert f.median() == 3.0


@pytest.mark.parametrize(
    "platform, multiplier",
    [
        ("google_ads", 1.0),
        ("meta", 1.0),
        ("tradedesk", 1.0),
        ("amazon", 1.0),
        ("x", 0.75),
        ("linkedin", 1.2),
        ("tiktok", 1.5),
        ("openrtb", 1.0),
    ],
)
def test_platform_multipliers_scale_the_median(platform: str, multiplier: float) -> None:
    assert PLATFORM_MULTIPLIERS[platform] == multiplier
    f = FallbackPricer()
    for s in (1.0, 4.0, 2.0):
        f.observe(s)
    assert f.fallback_bid(platform) == pytest.approx(2.0 * multiplier)


def test_fallback_bids_are_counted() -> None:
    f = FallbackPricer()
    f.observe(1.0)
    for _ in range(3):
        f.fallback_bid("meta")
    assert f.stats().fallback_bids == 3
    assert f.stats().median_cpm == 1.0


def test_unknown_platform_is_refused_by_name() -> None:
    f = FallbackPricer()
    f.observe(1.0)
    with pytest.raises(ConfigError, match="'myspace'"):
        f.fallback_bid("myspace")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.01])
def test_a_model_bid_that_is_not_a_finite_cpm_is_refused(bad: float) -> None:
    f = FallbackPricer()
    with pytest.raises(AmountError, match="finite CPM"):
        f.observe(bad)
    assert f.stats().samples == 0


@pytest.mark.parametrize("kw", [{"size": 0}, {"multipliers": {"x": 0.0}}, {"multipliers": {"x": float("nan")}}])
def test_bad_configuration_is_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        FallbackPricer(**kw)  # type: ignore[arg-type]
