"""``python3 -m bench.inside --quick``: timed work inside real servers under wrk, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import BenchError
from bench.inside import parse_work

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_each_work_is_timed_inside_its_server_and_netted_of_the_clock(tmp_path: Path) -> None:
    out = tmp_path / "inside.json"
    works = ["none", "decision", "loop:300", "read:64"]
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


@pytest.mark.parametrize("work", ["", "loop", "loop:", "loop:1.5", "read:-1", "decision:3", "spin:10"])
def test_work_that_is_not_understood_is_refused_naming_it(work: str) -> None:
    with pytest.raises(BenchError, match=f"work '{work}': expected decision, none, loop:N or read:KIB"):
        parse_work(work)


def test_the_works_understood() -> None:
    assert [parse_work(w) for w in ("decision", "none", "loop:300", "read:0.5")] == [
        ("decision", ""), ("none", ""), ("loop", "300"), ("read", "0.5")]
