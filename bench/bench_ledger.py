"""What the bidder's ledger costs at start: replaying a million booked notices.

Run: python3 -m pytest bench/bench_ledger.py --benchmark-only -p no:cacheprovider
The ledger keeps the bid id of every win and bill for the notice retention plus a day, and replays its
whole file at start; ``extra_info`` has the file's size and how much the process grew (peak RSS), which
is what sizes a bidder for a notice rate (README, "Notices and money").
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import msgspec

from bidder.ledger import Event, Ledger

NOTICES = 1_000_000
WEEK = 7 * 86400


def _write(path: Path, now: float) -> None:
    enc = msgspec.json.Encoder()
    with path.open("wb") as f:
        for i in range(NOTICES):
            kind = "bill" if i % 2 else "win"
            f.write(enc.encode(Event(seq=i + 1, ts=now - 3600 + i * 0.001, kind=kind, campaign_id=f"c{i % 1000:05d}",
                                     bid_id=f"6a5ddfdaed{i:x}", imp_id="1", creative_id="c-a", price=2.5,
                                     cost=2500 if kind == "bill" else 0)) + b"\n")


def test_replay_a_million_notices(benchmark: Any, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    now = time.time()
    _write(path, now)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ledgers: list[Ledger] = []
    benchmark.pedantic(lambda: ledgers.append(Ledger(path, lambda: now, WEEK)), rounds=1, iterations=1)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert ledgers[0].seen("bill", f"6a5ddfdaed{NOTICES - 1:x}")
    benchmark.extra_info.update(file_mb=path.stat().st_size / 1e6, rss_grown_mib=grown_mib)
    ledgers[0].close()
