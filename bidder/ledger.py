"""The bidder's book of record: notices and alerts, appended to a JSON-lines file in the data directory.

Replaying the file at start rebuilds what must survive a restart: spend per campaign (in total and per
UTC day), which bids were already billed (so a duplicate billing notice books nothing, even after a
restart), and the event sequence that the control plane pulls from ``GET /events``. Appends are
flushed to the OS on every write; a crash of the process loses nothing that was acknowledged.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from pathlib import Path

import msgspec

log = logging.getLogger("rtb.bidder")

DAY = 86400


# gc=False: the ledger keeps up to ``keep`` events in memory, and they cannot be part of a cycle; tracked,
# every full collection would walk them all.
class Event(msgspec.Struct, omit_defaults=True, gc=False):
    seq: int
    ts: float
    kind: str  # win | bill | loss | budget.alert | breaker.state_changed
    campaign_id: str = ""
    bid_id: str = ""
    imp_id: str = ""
    creative_id: str = ""
    price: float = 0.0  # USD CPM: the clearing price of a win or bill, our bid price for a loss
    cost: int = 0  # USD micros booked (bill only; 0 for test traffic)
    data: dict[str, object] = {}


_decode = msgspec.json.Decoder(Event)
_encode = msgspec.json.Encoder()


class Ledger:
    def __init__(self, path: Path, wall: Callable[[], float], retention: int, keep: int = 100_000) -> None:
        self._path = path
        self._wall = wall
        self._retention = retention
        self.seq = 0
        self.spend: collections.Counter[str] = collections.Counter()  # campaign id -> micros, all time
        self.spend_day: collections.Counter[tuple[str, int]] = collections.Counter()  # (id, UTC day)
        self.spend_last_day: collections.Counter[str] = collections.Counter()  # id -> micros, at replay
        # Per kind (win, bill), bid id -> time of the notices already booked, in time order: duplicates book
        # nothing. Strings to floats, so that the garbage collector never walks them (tuple keys made
        # every full collection visit each one).
        self._seen: dict[str, dict[str, float]] = {"win": {}, "bill": {}}
        self._recent: collections.deque[Event] = collections.deque(maxlen=keep)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._replay()
        self._file = path.open("ab")

    def _replay(self) -> None:
        if not self._path.exists():
            return
        since = self._wall() - DAY
        with self._path.open("rb") as f:
            for n, line in enumerate(f, 1):
                try:
                    event = _decode.decode(line)
                except msgspec.DecodeError:
                    # Only a torn last line (a crash mid-write) is expected here; keep going so that
                    # one bad line never hides the money booked after it.
                    log.warning("%s:%d: skipping an unreadable ledger line", self._path, n)
                    continue
                self._apply(event)
                if event.kind == "bill" and event.ts >= since:
                    self.spend_last_day[event.campaign_id] += event.cost

    def _apply(self, event: Event) -> None:
        self.seq = max(self.seq, event.seq)
        self._recent.append(event)
        book = self._seen.get(event.kind)
        if book is not None:
            book[event.bid_id] = event.ts
        if event.kind == "bill":
            if event.cost:
                self.spend[event.campaign_id] += event.cost
                self.spend_day[(event.campaign_id, int(event.ts // DAY))] += event.cost

    def append(self, kind: str, **fields: object) -> Event:
        self.seq += 1
        event = Event(seq=self.seq, ts=self._wall(), kind=kind, **fields)  # type: ignore[arg-type]
        self._file.write(_encode.encode(event) + b"\n")
        self._file.flush()
        self._apply(event)
        return event

    def seen(self, kind: str, bid_id: str) -> bool:
        """Whether a win or bill of this bid is booked already (within the retention)."""
        self._prune()
        book = self._seen.get(kind)
        return book is not None and bid_id in book

    def _prune(self) -> None:
        horizon = self._wall() - self._retention - DAY
        for book in self._seen.values():
            while book:
                first = next(iter(book))
                if book[first] >= horizon:
                    break
                del book[first]

    def today(self, campaign_id: str) -> int:
        return self.spend_day[(campaign_id, int(self._wall() // DAY))]

    def since(self, after: int, limit: int) -> list[Event]:
        recent = self._recent
        if not recent or recent[-1].seq <= after:
            return []
        if recent[0].seq <= after + 1:
            if recent[-1].seq - recent[0].seq == len(recent) - 1:  # contiguous: index by arithmetic
                start = max(0, after + 1 - recent[0].seq)
                return [recent[i] for i in range(start, min(len(recent), start + limit))]
            return [e for e in recent if e.seq > after][:limit]
        # Older than what is kept in memory: read the file (rare: a consumer far behind).
        out: list[Event] = []
        with self._path.open("rb") as f:
            for line in f:
                try:
                    event = _decode.decode(line)
                except msgspec.DecodeError:
                    continue
                if event.seq > after:
                    out.append(event)
                    if len(out) >= limit:
                        break
        return out

    def close(self) -> None:
        self._file.close()
