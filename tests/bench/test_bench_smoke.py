"""``rtb bench --quick`` end to end: real servers, wrk and the open-loop generator, on short runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import host
from bench.cli import cold_sweep

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_quick_bench_writes_every_measurement(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "control.cli", "bench", "--quick", "--ceiling", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rsgi" in done.stdout  # the table
    report = json.loads(out.read_text())
    assert {"machine", "plan", "noise_floor", "decision", "throughput", "ratios", "latency", "failed"} <= report.keys()
    assert report["failed"] == 0
    # every server, the bare apps too, under the bidder's default policy, as read from the kernel; and the
    # baseline again under granian's default
    assert report["plan"]["scheduling"] == "batch" and "scheduling batch" in done.stdout.splitlines()[0]
    assert {name: t["scheduling"] for name, t in report["throughput"].items()} == {
        name: ["normal"] if name == "baseline-normal" else ["batch"] for name in report["throughput"]}
    machine = report["machine"]
    assert machine["nproc"] >= 2 and machine["granian"] != "missing"
    l2 = host.l2_bytes(0)
    assert l2 is not None and machine["cpu"] == host.model() and machine["l2_kib"] == l2 // 1024
    assert f"({machine['cpu']}, {machine['l2_kib']:,} KiB of L2 a core)" in done.stdout.splitlines()[0]

    assert [(d["campaigns"], d["model"]) for d in report["decision"]] == [(1000, "prior"), (10000, "prior")]
    assert report["model_falls"] == {}
    floor = report["noise_floor"]
    assert 0 < floor["median_us"] <= floor["p99_us"] <= floor["p999_us"]
    for d in report["decision"]:
        assert d["status"] == 200 and d["matching"] > 0
        assert 0 < d["median_us"] <= d["p99_us"] <= d["p999_us"]
        cold = d["cold"]
        assert cold["calls"] == d["calls"] // 5
        assert cold["swept_bytes"] == cold_sweep() == 2 * l2
        assert 0 < cold["median_us"] <= cold["p99_us"] <= cold["p999_us"]

    assert set(report["throughput"]) == {"baseline", "baseline-normal", "asgi", "rsgi", "asgi-ceiling",
                                         "rsgi-ceiling", "baseline-rsgi"}
    for name in report["throughput"]:
        t = report["throughput"][name]
        assert t["median_rps"] > 0 and t["failed_runs"] == 0
        assert all(r["non_2xx"] == 0 and r["no_bids"] == 0 for r in t["runs"])
        lat = report["latency"][name]
        assert lat["achieved"] > 0 and lat["errors"] == 0
        assert 0 < lat["p50_ms"] <= lat["p99_ms"] <= lat["p999_ms"]
    assert all(v > 0 for v in report["ratios"].values())
    # The decision's cost in the server: the time per request the bidder takes over its ceiling.
    rps = {name: t["median_rps"] for name, t in report["throughput"].items()}
    assert report["decision_in_server_us"] == {
        i: pytest.approx(1e6 / rps[i] - 1e6 / rps[f"{i}-ceiling"]) for i in ("asgi", "rsgi")}
    # The server's CPU time per request, on the app's thread and on granian's, and as a difference.
    for t in report["throughput"].values():
        assert all(r["cpu_us"]["main"] > 0 and r["cpu_us"]["other"] > 0 and r["busy"] > 0 and r["stolen"] >= 0
                   for r in t["runs"])
        only = t["runs"][0]  # one run each with --quick: the medians are its figures
        assert t["median_cpu_us"] == {**only["cpu_us"],
                                      "total": pytest.approx(only["cpu_us"]["main"] + only["cpu_us"]["other"])}
        assert t["median_busy"] == only["busy"] and t["median_stolen"] == only["stolen"]
        assert only["switches"] > 0 and t["median_switches"] == only["switches"]
    cpu = {name: t["median_cpu_us"] for name, t in report["throughput"].items()}
    assert report["decision_in_server_cpu_us"] == {
        i: {part: pytest.approx(cpu[i][part] - cpu[f"{i}-ceiling"][part]) for part in ("main", "other", "total")}
        for i in ("asgi", "rsgi")}
    # The rest of the app's cost: its ceiling's CPU per request over the bare app of its interface.
    assert report["app_over_bare_cpu_us"] == {
        i: {part: pytest.approx(cpu[f"{i}-ceiling"][part] - cpu[bare][part]) for part in ("main", "other", "total")}
        for i, bare in (("asgi", "baseline"), ("rsgi", "baseline-rsgi"))}
    assert set(report["ratios"]) == {f"{n}/baseline" for n in report["throughput"]} - {"baseline/baseline"}
    assert "on the app's thread" in done.stdout and "more than the bare app" in done.stdout


@pytest.mark.e2e
def test_quick_bench_with_a_model_compares_it_with_the_priors_in_the_same_run(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    for args in (["simulate", "--out", str(events), "--n", "5000"],
                 ["train", "ctr", "--events", str(events), "--out", str(tmp_path), "--bits", "16"]):
        done = subprocess.run([sys.executable, "-m", "control.cli", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    artefact = next(tmp_path.glob("ctr-*.json"))
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "control.cli", "bench", "--quick", "--model", str(artefact),
                           "--scheduling", "normal", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert all(t["scheduling"] == ["normal"] for t in report["throughput"].values())
    assert [(d["campaigns"], d["model"]) for d in report["decision"]] == [
        (1000, "prior"), (10000, "prior"), (1000, "learned"), (10000, "learned")]
    assert set(report["throughput"]) == {"baseline", "asgi", "rsgi", "asgi+model", "rsgi+model"}
    assert set(report["model_falls"]) == {"asgi+model", "rsgi+model"}
    assert report["decision_in_server_us"] == {} and report["decision_in_server_cpu_us"] == {}
    assert report["app_over_bare_cpu_us"] == {}
    assert all(isinstance(f, float) for f in report["model_falls"].values())
    assert "below the priors' ratio" in done.stdout
