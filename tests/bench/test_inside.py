"""``python3 -m bench.inside --quick``: timed work inside real servers under wrk, end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import SAMPLE, BenchError, _bidder_here
from bench.inside import STEPS, _leave_out, parse_work
from bidder.decide import Outcome
from bidder.service import Bidder

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_each_work_is_timed_inside_its_server_and_netted_of_the_clock(tmp_path: Path) -> None:
    out = tmp_path / "inside.json"
    works = ["none", "decision", "decision-without:admission", "decode", "loop:300", "read:64"]
    done = subprocess.run([sys.executable, "-m", "bench.inside", "--quick", "--interface", "rsgi",
                           "--work", ",".join(works), "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())
    assert [(r["interface"], r["work"]) for r in rows] == [("rsgi", w) for w in works]
    clock = rows[0]["call_us"]
    for r in rows:
        assert r["rps"] > 0 and r["call_us"] > 0 and r["app_us"] > 0 and r["granian_us"] > 0
        assert r["net_us"] == pytest.approx(r["call_us"] - clock)
        assert r["in_process_us"] > 0 and r["in_process_rounds"] == [r["in_process_us"]]
        assert r["in_process_net_us"] == pytest.approx(r["in_process_us"] - rows[0]["in_process_us"])
        assert len(r["rounds"]) == 1
    assert "net of none" in done.stdout and "decision" in done.stdout


@pytest.mark.parametrize("work", ["", "loop", "loop:", "loop:1.5", "read:-1", "decision:3", "spin:10", "decode:1",
                                  "decision-without", "decision-without:decode"])
def test_work_that_is_not_understood_is_refused_naming_it(work: str) -> None:
    expected = "decision, decision-without:response|admission|breaker, decode, none, loop:N or read:KIB"
    with pytest.raises(BenchError, match=re.escape(f"work '{work}': expected {expected}")):
        parse_work(work)


def test_the_works_understood() -> None:
    works = ("decision", "decision-without:breaker", "decode", "none", "loop:300", "read:0.5")
    assert [parse_work(w) for w in works] == [
        ("decision", ""), ("decision-without", "breaker"), ("decode", ""), ("none", ""), ("loop", "300"),
        ("read", "0.5")]
    assert STEPS == ("response", "admission", "breaker")


def _reserved(bidder: Bidder) -> float:
    return sum(float(s["reserved"]) for s in bidder.engine.budget.stats().values())  # type: ignore[index]


def test_a_decision_without_its_response_bids_with_the_answer_given() -> None:
    with _bidder_here(100) as bidder:
        _leave_out(bidder.engine, "response", b"given")
        assert bidder.engine.bid(SAMPLE.read_bytes()) == Outcome(200, b"given")
        assert _reserved(bidder) > 0  # the rest of the decision still ran


def test_a_decision_without_its_admission_reserves_nothing() -> None:
    body = SAMPLE.read_bytes()
    with _bidder_here(100) as bidder:
        bidder.engine.bid(body)
        held = _reserved(bidder)
        assert held > 0
        _leave_out(bidder.engine, "admission", b"")
        answer = bidder.engine.bid(body)
        assert answer.status == 200 and b'"seatbid"' in answer.body
        assert _reserved(bidder) == held


def test_a_decision_without_its_breaker_keeps_no_history_but_the_bidder_reads_the_real_one() -> None:
    body = SAMPLE.read_bytes()
    with _bidder_here(100) as bidder:
        bidder.engine.bid(body)
        samples = bidder.fallback.stats().samples
        _leave_out(bidder.engine, "breaker", b"")
        assert bidder.engine.bid(body).status == 200
        assert bidder.fallback.stats().samples == samples
        assert bidder.status()[0] == 200  # /status still reads the bidder's own breaker
