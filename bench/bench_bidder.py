"""The decision in-process: ``Engine.bid`` on the IAB simple banner, bytes in to bytes out.

Run: python3 -m pytest bench/bench_bidder.py --benchmark-only -p no:cacheprovider
``test_signed_query_*``: the notice signature in C against its Python twin.
Targets (issue 2): with 1,000 campaigns (about 5% match) median <= 15 us, p99 <= 40 us; 10,000 reported.
``test_baseline_msgspec_roundtrip`` decodes and encodes the same bytes generically: the least any
bytes-to-bytes answer costs here, measured in the same run to read the others against.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from bench import synth
from bench.cli import SAMPLE
from bidder.campaign import parse_campaigns
from bidder.notices import Signer, query_py
from bidder.service import Bidder
from bidder.settings import from_env

BANNER = SAMPLE.read_bytes()
_no_match = json.loads(BANNER)
_no_match["imp"][0]["banner"] = {"w": 1, "h": 1}  # no synthetic creative has this size
NO_MATCH = json.dumps(_no_match).encode()


def _bidder(n: int, data: Path) -> Iterator[Bidder]:
    campaigns = parse_campaigns(json.dumps({"campaigns": synth.campaigns(n)}).encode())
    b = Bidder(from_env({}, data_dir=str(data), notice_secret=secrets.token_hex(32)), campaigns)
    b.warm_up()
    yield b
    b.close()


@pytest.fixture(scope="module")
def bidder_1k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bidder]:
    yield from _bidder(1_000, tmp_path_factory.mktemp("data-1k"))


@pytest.fixture(scope="module")
def bidder_10k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bidder]:
    yield from _bidder(10_000, tmp_path_factory.mktemp("data-10k"))


def test_baseline_msgspec_roundtrip(benchmark: Any) -> None:
    decode, encode = msgspec.json.decode, msgspec.json.encode
    benchmark.pedantic(lambda: encode(decode(BANNER)), rounds=20_000, warmup_rounds=1_000)


def test_bid_simple_banner_1k_campaigns(benchmark: Any, bidder_1k: Bidder) -> None:
    assert bidder_1k.engine.bid(BANNER).status == 200
    benchmark.pedantic(bidder_1k.engine.bid, args=(BANNER,), rounds=20_000, warmup_rounds=1_000)


def test_bid_simple_banner_1k_campaigns_caches_cold(benchmark: Any, bidder_1k: Bidder) -> None:
    """As above, with 4 MiB of other memory read (untimed) before each call: about what the HTTP server's
    own work between two requests leaves in the CPU caches, and why the decision takes longer inside the
    server than in the tight loop above."""
    other = np.ones(4 * 1024 * 1024 // 8)

    def evict() -> None:
        other.sum()

    benchmark.pedantic(bidder_1k.engine.bid, args=(BANNER,), setup=evict, rounds=20_000, warmup_rounds=1_000)


def test_bid_simple_banner_10k_campaigns(benchmark: Any, bidder_10k: Bidder) -> None:
    assert bidder_10k.engine.bid(BANNER).status == 200
    benchmark.pedantic(bidder_10k.engine.bid, args=(BANNER,), rounds=20_000, warmup_rounds=1_000)


def test_no_bid_when_nothing_matches_1k_campaigns(benchmark: Any, bidder_1k: Bidder) -> None:
    assert bidder_1k.engine.bid(NO_MATCH).status == 204
    benchmark.pedantic(bidder_1k.engine.bid, args=(NO_MATCH,), rounds=20_000, warmup_rounds=1_000)


# One bid's signed notice query (``Signer.query``, in C) against its Python twin, the same arguments:
# what moving the HMAC and the query string into ``bidder/_native.c`` saves per bid.
_SECRET = b"k" * 64
_SIGNER = Signer(_SECRET, "https://bid.example")
_QUERY = ("7f3a9c01", "1", "1", *_SIGNER.line("synth-0042", "cr-1"), "3.2", "USD", "1764331234", "0")


def test_signed_query_c(benchmark: Any) -> None:
    assert _SIGNER.query(*_QUERY) == query_py(_SECRET, *_QUERY)
    benchmark.pedantic(_SIGNER.query, args=_QUERY, rounds=20_000, warmup_rounds=1_000)


def test_signed_query_python_twin(benchmark: Any) -> None:
    benchmark.pedantic(query_py, args=(_SECRET, *_QUERY), rounds=20_000, warmup_rounds=1_000)
