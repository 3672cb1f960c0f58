import pytest

from shield import ConfigError, FakeClock, MonotonicClock
from shield.clock import FAKE_EPOCH


def test_fake_clock_moves_only_when_advanced_and_both_readings_together() -> None:
    c = FakeClock()
    assert (c.monotonic(), c.time()) == (0.0, FAKE_EPOCH)
    c.advance(1.5)
    assert (c.monotonic(), c.time()) == (1.5, FAKE_EPOCH + 1.5)
    assert FAKE_EPOCH % 86_400 == 0  # starts at a midnight UTC


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_fake_clock_never_goes_back(bad: float) -> None:
    with pytest.raises(ConfigError, match="advance"):
        FakeClock().advance(bad)


def test_monotonic_clock_reads_real_time() -> None:
    c = MonotonicClock()
    a = c.monotonic()
    assert c.monotonic() >= a
    assert c.time() > FAKE_EPOCH - 10 * 365 * 86_400
