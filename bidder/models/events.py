"""The impression event log that the conversion model learns from.

JSON lines, one impression we won and served per line, in time order:
    {"ts": 1704067200.0, "campaign": "c7", "converted": false,
     "ctx": {"fmt": 0, "device_type": 4, "os": "ios", "country": "usa", "region": "ca",
             "inventory": "news.example.com", "publisher": "pub-12", "hour_of_week": 57,
             "w": 300, "h": 250, "user_id": "", "segments": ["s3", "s18"]}}
``ctx`` is ``bidder.value.Context`` exactly as the bidder built it for the request (strings lower-cased,
``fmt`` an index into ``bidder.value.FORMATS``); ``converted`` says whether the impression led to a
conversion attributed to ``campaign`` (joined offline from the advertiser's conversions).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec

from bidder.models.errors import DataError
from bidder.value import Context


class Event(msgspec.Struct, frozen=True):
    campaign: str
    converted: bool
    ctx: Context
    ts: float = 0.0


_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


def read_events(path: str | Path) -> tuple[list[Event], bytes]:
    """All events of a log and the file's bytes (for its hash); errors name the file and line."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read event log: {exc.strerror}") from exc
    events = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(_decoder.decode(line))
        except msgspec.DecodeError as exc:
            raise DataError(path, f"line {n}: {exc}") from exc
    if not events:
        raise DataError(path, "no events")
    return events, data


def write_events(path: str | Path, events: Iterable[Event]) -> None:
    with open(path, "wb") as f:
        for e in events:
            f.write(_encoder.encode(e))
            f.write(b"\n")
