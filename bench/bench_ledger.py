"""What the bidder's ledger costs: at start, and per notice, with a million notices booked.

Run: python3 -m pytest bench/bench_ledger.py --benchmark-only -p no:cacheprovider
``extra_info`` has the data directory's size and how much the process's resident memory grew: what sizes a bidder's
disk and memory for a notice rate (README, "Notices and money").
"""

from __future__ import annotations

import itertools
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bidder.ledger import LOG, Event, Ledger

NOTICES = 1_000_000
WEEK = 7 * 86400
NOW = time.time()


def _write(path: Path) -> None:
    enc = msgspec.json.Encoder()
    with path.open("wb") as f:
        for i in range(NOTICES):
            kind = "bill" if i % 2 else "win"
            f.write(enc.encode(Event(seq=i + 1, ts=NOW - 3600 + i * 0.001, kind=kind, campaign_id=f"c{i % 1000:05d}",
                                     bid_id=f"6a5ddfdaed{i:x}", imp_id="1", creative_id="c-a", price=2.5,
                                     cost=2500 if kind == "bill" else 0)) + b"\n")


def _rss_mib() -> float:
    """Resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _megabytes(data: Path) -> float:
    return sum(p.stat().st_size for p in data.iterdir()) / 1e6


@pytest.fixture(scope="module")
def booked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory with a million notices booked and committed."""
    data = tmp_path_factory.mktemp("booked")
    _write(data / LOG)
    Ledger(data, lambda: NOW, WEEK).close()
    yield data


def test_first_start_on_a_million_notices_from_before_the_database(benchmark: Any, tmp_path: Path) -> None:
    """A data directory that has only the log (written before ``ledger.db`` existed): replayed once."""
    _write(tmp_path / LOG)
    before, peak = _rss_mib(), _peak_mib()
    ledgers: list[Ledger] = []
    benchmark.pedantic(lambda: ledgers.append(Ledger(tmp_path, lambda: NOW, WEEK)), rounds=1, iterations=1)
    assert ledgers[0].replayed == NOTICES and ledgers[0].seen("bill", f"6a5ddfdaed{NOTICES - 1:x}")
    benchmark.extra_info.update(data_mb=_megabytes(tmp_path), rss_grown_mib=_rss_mib() - before,
                                peak_grown_mib=_peak_mib() - peak)
    ledgers[0].close()


def test_start_with_a_million_notices_booked(benchmark: Any, booked: Path) -> None:
    before = _rss_mib()
    ledgers: list[Ledger] = []
    benchmark.pedantic(lambda: ledgers.append(Ledger(booked, lambda: NOW, WEEK)), rounds=5, iterations=1)
    assert all(led.replayed == 0 and len(led.spend) == 500 for led in ledgers)
    benchmark.extra_info.update(data_mb=_megabytes(booked), rss_grown_mib=_rss_mib() - before)
    for led in ledgers:
        led.close()


def test_book_a_bill_with_a_million_booked(benchmark: Any, booked: Path) -> None:
    """The duplicate check and the append, as ``Bidder.notice`` does them; commits handed to the writer included."""
    ledger = Ledger(booked, lambda: NOW, WEEK)
    ids = (f"fresh{i:x}" for i in itertools.count())

    def book() -> None:
        bid_id = next(ids)
        if not ledger.seen("bill", bid_id):
            ledger.append("bill", campaign_id="c00001", bid_id=bid_id, imp_id="1", creative_id="c-a", price=2.5,
                          cost=2500)

    benchmark.pedantic(book, rounds=20_000, warmup_rounds=1_000)
    ledger.close()


def test_duplicate_check_of_a_committed_bill(benchmark: Any, booked: Path) -> None:
    ledger = Ledger(booked, lambda: NOW, WEEK)
    ids = itertools.cycle([f"6a5ddfdaed{i:x}" for i in range(1, NOTICES, 9973)])
    benchmark.pedantic(lambda: ledger.seen("bill", next(ids)), rounds=20_000, warmup_rounds=1_000)
    ledger.close()


def test_book_bills_paced_at_1000_a_second(benchmark: Any, booked: Path) -> None:
    """Bills booked at a steady 1,000 a second for 10 s, as an exchange sends them: each one's own time
    (duplicate check and append) in ``extra_info``, while the writer thread commits behind them."""
    ledger = Ledger(booked, time.time, WEEK)
    times: list[float] = []

    def run() -> None:
        clock = time.perf_counter
        start = due = clock()
        i = 0
        while due - start < 10.0:
            while clock() < due:  # a busy wait: the loop of a bidder that has nothing else to do
                pass
            bid_id = f"paced{i:x}"
            t0 = clock()
            if not ledger.seen("bill", bid_id):
                ledger.append("bill", campaign_id="c00001", bid_id=bid_id, imp_id="1", creative_id="c-a",
                              price=2.5, cost=2500)
            times.append(clock() - t0)
            i += 1
            due += 0.001

    benchmark.pedantic(run, rounds=1, iterations=1)
    times.sort()
    n = len(times)
    benchmark.extra_info.update(notices=n, median_us=times[n // 2] * 1e6, p99_us=times[n * 99 // 100] * 1e6,
                                max_ms=times[-1] * 1e3)
    ledger.close()
