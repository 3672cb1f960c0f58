"""HTTP behaviour, through a real granian process, the same tests for ASGI and RSGI."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bidder.conftest import SECRET, sample
from tests.process import free_port, running

BANNER = sample("request-1-simple-banner.json")
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module", params=["asgi", "rsgi"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    data: Path = tmp_path_factory.mktemp(f"data-{request.param}")
    env = {"RTB_NOTICE_SECRET": SECRET, "RTB_MAX_BODY": str(MAX_BODY), "RTB_DATA_DIR": str(data)}
    args = ["bidder", "--interface", request.param, "--bind", f"127.0.0.1:{port}"]
    with running(args, env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as c:
        yield c


def test_bid_is_answered_with_a_bid_response(client: httpx.Client) -> None:
    r = client.post("/openrtb2/bid", content=BANNER, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json()["id"] == json.loads(BANNER)["id"]
    assert r.headers["x-openrtb-version"] == "2.6"


def test_alias_endpoint_and_version_echo(client: httpx.Client) -> None:
    r = client.post("/api/v1/bidding/bid-request", content=BANNER, headers={"x-openrtb-version": "2.5"})
    assert r.status_code == 200 and r.headers["x-openrtb-version"] == "2.5"


def test_no_bid_is_204_without_body(client: httpx.Client) -> None:
    body = json.loads(BANNER)
    body["imp"][0]["banner"] = {"w": 1, "h": 1}
    r = client.post("/openrtb2/bid", json=body)
    assert r.status_code == 204 and r.content == b""


def test_malformed_is_400_without_body(client: httpx.Client) -> None:
    r = client.post("/openrtb2/bid", content=b'{"id": "x", "imp": []}')
    assert r.status_code == 400 and r.content == b""
    r = client.post("/openrtb2/bid", content=b"\xff\xfe")
    assert r.status_code == 400


def test_gzip_request_by_header_and_by_query(client: httpx.Client) -> None:
    packed = gzip.compress(BANNER)
    r = client.post("/openrtb2/bid", content=packed, headers={"content-encoding": "gzip"})
    assert r.status_code == 200
    r = client.post("/openrtb2/bid?gzip=1", content=packed)
    assert r.status_code == 200
    r = client.post("/openrtb2/bid", content=packed[:-8], headers={"content-encoding": "gzip"})
    assert r.status_code == 400  # truncated


def test_gzip_response_when_accepted(client: httpx.Client) -> None:
    r = client.post("/openrtb2/bid", content=BANNER, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.json()["seatbid"]  # httpx inflated it
    r = client.post("/openrtb2/bid", content=BANNER, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in r.headers


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    r = client.post("/openrtb2/bid", content=b" " * (MAX_BODY + 1))
    assert r.status_code == 413


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    r = client.post("/openrtb2/bid", content=chunks())
    assert r.status_code == 413


def test_gzip_bomb_is_413_without_inflating_it(client: httpx.Client) -> None:
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))  # 50 MiB of spaces in ~50 KiB
    assert len(bomb) < MAX_BODY
    r = client.post("/openrtb2/bid", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413


def test_keep_alive_serves_many_requests_on_one_connection(client: httpx.Client) -> None:
    ports = set()
    for _ in range(5):
        r = client.post("/openrtb2/bid", content=BANNER, extensions={})
        assert r.status_code == 200
        stream = r.extensions["network_stream"]
        ports.add(stream.get_extra_info("client_addr"))
    assert len(ports) == 1


def test_notice_round_trip_and_status(client: httpx.Client) -> None:
    bid = client.post("/openrtb2/bid", content=BANNER).json()["seatbid"][0]["bid"][0]
    burl = bid["burl"].replace("${AUCTION_PRICE}", "1.5")
    path = burl.split("/", 3)[3]
    assert client.get("/" + path).status_code == 200
    assert client.post("/" + path).status_code == 200  # duplicate via POST: accepted, not booked
    tampered = ("/" + path).replace("bp=", "bp=1")
    assert client.get(tampered).status_code == 400
    status = client.get("/status").json()
    assert status["campaigns"][bid["cid"]]["billed"] == 1
    assert status["campaigns"][bid["cid"]]["spend"] == pytest.approx(0.0015)
    assert status["model"] == "prior-1"


def test_health_ready_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    client.post("/openrtb2/bid", content=BANNER)
    m = client.get("/metrics")
    assert m.status_code == 200
    text = m.text
    assert 'rtb_bid_requests_total{outcome="bid"}' in text
    assert 'rtb_no_bids_total{reason="no_match"}' in text
    assert "rtb_request_latency_milliseconds_bucket" in text
    assert client.get("/nope").status_code == 404
    assert client.delete("/status").status_code == 405
