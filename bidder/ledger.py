"""The bidder's book of record: a log of notices and alerts, committed in batches into SQLite.

Every event is appended to ``events.jsonl`` in the data directory and flushed to the OS before the
notice is acknowledged, so a crash of the process loses nothing acknowledged. What must survive a
restart lives in ``ledger.db`` (SQLite): spend per campaign, and the bid ids of the wins and bills
booked within the retention, so that a duplicate billing notice books nothing, even after a restart.
Events reach it in batches, which a thread of the ledger's own commits, each in one transaction that
also records how far into the log it goes. So a start replays only the log after the last commit,
however long the history, and memory holds only the latest events (``keep``, for ``GET /events``) and
the batches not yet committed.

Once the log is past ``segment_bytes`` it is renamed ``events-<first seq>.jsonl`` and a new one begun;
a commit records the first seq of the log its position is in, so a start replays from there through
the later logs. The archives are the audit trail and serve ``GET /events`` to a consumer far
behind; the bidder never deletes them (operators may, once their consumers are past them).
"""

from __future__ import annotations

import collections
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec

log = logging.getLogger("rtb.bidder")

DAY = 86400
LOG = "events.jsonl"
BOOKED = ("win", "bill")  # the kinds booked once per bid id
SLOT = 600  # seconds: spend is also kept per slot, for the last day's at start
WAL_COPY_COMMITS = 64  # the write-ahead log is copied into the database after so many commits (a few MiB)

_SCHEMA = """
create table if not exists seen (
    kind text not null, bid_id text not null, ts real not null, primary key (kind, bid_id)
) without rowid;
create index if not exists seen_ts on seen (ts);
create table if not exists spend (campaign_id text primary key, micros integer not null) without rowid;
create table if not exists spend_slot (
    campaign_id text not null, slot integer not null, micros integer not null, primary key (campaign_id, slot)
) without rowid;
create table if not exists meta (key text primary key, value integer not null) without rowid;
"""


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


class LedgerError(Exception):
    """A data directory the ledger cannot start from without losing money."""


class _Batch:
    """Events appended since the last batch was handed over, with what their commit records."""

    __slots__ = ("books", "events", "log_seq", "offset", "seq")

    def __init__(self) -> None:
        self.events: list[Event] = []
        # Per kind, the batch's booked bid ids (str to float: never tracked by the garbage collector).
        self.books: dict[str, dict[str, float]] = {kind: {} for kind in BOOKED}
        # Set when it is taken: the last event's seq, and the position after it (the log's length, and
        # the log's first event's seq: which log that is).
        self.seq = 0
        self.offset = 0
        self.log_seq: int | None = None


class Ledger:
    def __init__(self, data_dir: Path, wall: Callable[[], float], retention: int, *, keep: int = 100_000,
                 batch: int = 1024, segment_bytes: int = 64 << 20, background: bool = True) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "ledger.db").exists() and any(data_dir.glob("events-*.jsonl")):
            # Archives mean the database existed: starting without it would forget all the spend
            # booked before the last archive, and bid it again.
            raise LedgerError(f"{data_dir / 'ledger.db'} is missing, but {data_dir} holds archived logs "
                              "(events-*.jsonl): restore ledger.db from a backup before starting")
        self._dir = data_dir
        self._log = data_dir / LOG
        self._wall = wall
        # Within this much of a win or bill, the same bid's notice is a duplicate. Notices are refused
        # past their bid's expiry + retention, and a bid's first notice comes after the bid.
        self._horizon = retention + DAY
        self._batch_size = batch
        self._segment_bytes = segment_bytes
        self._db = _connect(data_dir)
        self._db.executescript(_SCHEMA)
        meta = dict(self._db.execute("select key, value from meta"))
        self.seq: int = meta.get("seq", 0)
        self.spend: collections.Counter[str] = collections.Counter(dict(self._db.execute("select * from spend")))
        self._recent: collections.deque[Event] = collections.deque(maxlen=keep)
        self._batch = _Batch()
        self._pruned = 0.0
        self._offset = 0
        self._log_seq: int | None = None  # the first seq of the log (of the next event, while it is empty)
        # All writes but those of start and close are the writer thread's (see ``_Writer``);
        # ``_inflight`` is the batch handed to it, until committed.
        self._inflight: _Batch | None = None
        self._sql = threading.Lock()  # one writer at a time, and no write while the WAL is copied
        self.replayed = self._replay(meta.get("applied", 0), meta.get("log_seq"))
        self._file = self._log.open("ab")
        if self._offset >= self._segment_bytes:
            self._rotate()
        self._writer = _Writer(self) if background else None
        since = self._wall() - DAY
        # The slot the day began in counts whole: a little more than a day, which can only make a daily
        # budget stricter.
        self.spend_last_day: collections.Counter[str] = collections.Counter(dict(self._db.execute(
            "select campaign_id, sum(micros) from spend_slot where slot >= ? group by campaign_id",
            (int(since // SLOT),))))

    # --- start ---------------------------------------------------------------------------------

    def _replay(self, applied: int, log_seq: int | None) -> int:
        """Apply what follows the last commit, which may begin in an archived log; returns how many
        events that was."""
        n = 0
        archived = [(_archive_seq(path), path) for path in self._archives()]
        for seq, path in archived:  # from the one the last commit was in (all, if none was), oldest first
            if log_seq is None or seq >= log_seq:
                n += self._replay_file(path, applied if seq == log_seq else 0, seq)
        first = _first_seq(self._log)
        if any(seq == log_seq for seq, _ in archived) or first is not None and log_seq and first != log_seq:
            applied = 0  # the log was begun after the last commit
        size = self._log.stat().st_size if self._log.exists() else 0
        if size < applied:
            # It lost its tail (the OS crashed), and what the last commit has is all there is. Its next
            # events start at ``size``, and that must be recorded before any is appended.
            log.warning("%s is shorter (%d bytes) than its last commit says (%d)", self._log, size, applied)
            size = _whole_lines(self._log, size)
            self._db.execute("insert or replace into meta values ('applied', ?)", (size,))
            applied = size
        n += self._replay_file(self._log, applied, first)
        if self._log_seq is None:  # an empty log: its first event will be the next
            self._log_seq = self.seq + 1
        if n:
            log.info("%s: replayed %d events after the last commit", self._dir, n)
        return n

    def _replay_file(self, path: Path, start: int, first: int | None) -> int:
        """Apply ``path`` from byte ``start``; a commit meanwhile records its position in this file."""
        self._log_seq, self._offset = first, start
        if not path.exists() or path.stat().st_size <= start:
            return 0
        n = 0
        with path.open("r+b") as f:
            f.seek(start)
            for line in f:
                if not line.endswith(b"\n"):
                    # A torn last line (a crash mid-write). Cut it off: the next append must start a line
                    # of its own, or it would be lost with it at the next replay.
                    log.warning("%s: dropping a torn last line at byte %d", path, self._offset)
                    f.truncate(self._offset)
                    break
                self._offset += len(line)
                try:
                    event = _decode.decode(line)
                except msgspec.DecodeError:
                    # Keep going: one bad line must never hide the money booked after it.
                    log.warning("%s: skipping an unreadable line at byte %d", path, self._offset - len(line))
                    continue
                self.seq = max(self.seq, event.seq)
                self._apply(event)
                n += 1
                if len(self._batch.events) >= 10_000:  # a first start on a long pre-SQLite log: in steps
                    self._commit_now()
        self._commit_now()  # before the position moves to another file
        return n

    # --- booking -------------------------------------------------------------------------------

    def append(self, kind: str, **fields: object) -> Event:
        self.seq += 1
        event = Event(seq=self.seq, ts=self._wall(), kind=kind, **fields)  # type: ignore[arg-type]
        line = _encode.encode(event) + b"\n"
        self._file.write(line)
        self._file.flush()
        if not self._offset:
            self._log_seq = event.seq
        self._offset += len(line)
        self._apply(event)
        if len(self._batch.events) >= self._batch_size or self._offset >= self._segment_bytes:
            self._save()
        return event

    def _save(self) -> None:
        """Hand the batch to the writer thread (or, without one, commit it here); archive the log once
        it is long enough."""
        if self._offset >= self._segment_bytes:
            try:
                self._rotate()
            except OSError:
                log.exception("ledger: archiving %s failed; appends go on in it", self._log)
        if len(self._batch.events) < self._batch_size or self._inflight is not None:
            return  # not a batch yet; or the writer is not done with the last one, and this one grows
        if self._writer is not None:
            self._writer.hand(self._take())
            return
        try:
            self._commit_now()
        except sqlite3.Error:
            # The events are in the log and in memory: booking goes on, the batch is tried again at the
            # next append, and a restart would replay it.
            log.exception("ledger: writing to ledger.db failed; %d events wait", len(self._batch.events))

    def _apply(self, event: Event) -> None:
        self._recent.append(event)
        batch = self._batch
        batch.events.append(event)
        book = batch.books.get(event.kind)
        if book is not None:
            book[event.bid_id] = event.ts
        if event.kind == "bill" and event.cost:
            self.spend[event.campaign_id] += event.cost

    def seen(self, kind: str, bid_id: str) -> bool:
        """Whether a win or bill of this bid is booked already (within the retention)."""
        book = self._batch.books.get(kind)
        if book is None:
            return False
        if bid_id in book:
            return True
        inflight = self._inflight  # read once: the writer clears it once committed
        if inflight is not None and bid_id in inflight.books[kind]:
            return True
        return self._db.execute("select 1 from seen where kind = ? and bid_id = ? and ts >= ?",
                                (kind, bid_id, self._wall() - self._horizon)).fetchone() is not None

    def _take(self) -> _Batch:
        batch, self._batch = self._batch, _Batch()
        # The position after it, where the next start is to replay from (lines skipped at replay included).
        batch.seq, batch.offset, batch.log_seq = self.seq, self._offset, self._log_seq
        return batch

    def _commit_now(self) -> None:
        """Commit the current batch on this thread (start, close, no writer): only when none is in flight."""
        if not self._batch.events:
            return
        batch = self._take()
        try:
            with self._sql:
                self.commit(self._db, batch)
        except BaseException:
            self._batch = _merge(batch, self._batch)
            raise

    def commit(self, db: sqlite3.Connection, batch: _Batch) -> None:
        """Write a batch's bookings to the database in one transaction, with how far into the log it goes."""
        spend: collections.Counter[str] = collections.Counter()
        slots: collections.Counter[tuple[str, int]] = collections.Counter()
        rows = []
        for e in batch.events:
            if e.kind in BOOKED:
                rows.append((e.kind, e.bid_id, e.ts))
                if e.cost and e.kind == "bill":
                    spend[e.campaign_id] += e.cost
                    slots[(e.campaign_id, int(e.ts // SLOT))] += e.cost
        now = self._wall()
        db.execute("begin")
        try:
            _insert(db, "insert or replace into seen values {}", 3, rows)
            _insert(db, "insert into spend values {} on conflict do update set micros = micros + excluded.micros",
                    2, list(spend.items()))
            _insert(db, "insert into spend_slot values {} on conflict do update set micros = micros + excluded.micros",
                    3, [(*k, v) for k, v in slots.items()])
            db.executemany("insert or replace into meta values (?, ?)",
                           (("seq", batch.seq), ("applied", batch.offset), ("log_seq", batch.log_seq or 0)))
            # Bookings past the horizon are forgotten a few at a time, at most twice what a batch adds: an
            # hour's worth in one go could hold the database for seconds.
            db.execute("delete from seen where (kind, bid_id) in "
                       "(select kind, bid_id from seen where ts < ? order by ts limit ?)",
                       (now - self._horizon, 2 * len(batch.events)))
            if now - self._pruned >= 3600:  # a few rows per campaign and slot: hourly
                db.execute("delete from spend_slot where slot < ?", (int((now - DAY) // SLOT) - 1,))
                self._pruned = now
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise

    def _rotate(self) -> None:
        """Archive the log and begin a new one. Nothing need be committed first: a commit records the
        first seq of the log its position is in, and a start replays from there through the later ones."""
        archive = self._dir / f"events-{self._log_seq or self.seq:012d}.jsonl"
        os.replace(self._log, archive)
        try:
            new = self._log.open("ab")
        except OSError:
            os.replace(archive, self._log)  # appends go on where they went
            raise
        self._file.close()
        self._file, self._offset, self._log_seq = new, 0, self.seq + 1

    def settle(self) -> None:
        """Wait until the batch handed to the writer is committed (or its commit failed)."""
        if self._writer is not None:
            self._writer.settle()

    # --- reading -------------------------------------------------------------------------------

    def since(self, after: int, limit: int) -> list[Event]:
        if after >= self.seq:
            return []
        recent = self._recent
        if recent and recent[0].seq <= after + 1:
            if recent[-1].seq - recent[0].seq == len(recent) - 1:  # contiguous: index by arithmetic
                start = after + 1 - recent[0].seq
                return [recent[i] for i in range(start, min(len(recent), start + limit))]
            return [e for e in recent if e.seq > after][:limit]
        # Older than what is kept in memory: read the files (rare: a consumer far behind).
        out: list[Event] = []
        for path in self._files_from(after + 1):
            for event in _read(path):
                if event.seq > after:
                    out.append(event)
                    if len(out) >= limit:
                        return out
        return out

    def _files_from(self, seq: int) -> list[Path]:
        """The archives that may hold ``seq`` or later, oldest first, then the log."""
        archives = self._archives()
        first = max([i for i, p in enumerate(archives) if _archive_seq(p) <= seq], default=0)
        return [*archives[first:], self._log]

    def _archives(self) -> list[Path]:
        return sorted(self._dir.glob("events-*.jsonl"), key=_archive_seq)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            if self._writer is not None:
                self._writer.stop()
            inflight = self._inflight
            if inflight is not None:  # its commit failed: one last try, with everything after it
                self._inflight = None
                self._batch = _merge(inflight, self._batch)
            self._commit_now()
            copy_wal(self._db)
        finally:
            self._file.close()
            self._db.close()


class _Writer:
    """The ledger's thread for SQLite writes. Committing a batch on the event loop paused it for about a
    millisecond; copying the write-ahead log into the database, with its fsync, for up to 100 ms; and a
    commit on the loop while another connection copied waited 10-50 ms. Here they wait on no request."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._db = _connect(ledger._dir)
        self._wake = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def hand(self, batch: _Batch) -> None:
        with self._wake:
            self._ledger._inflight = batch
            self._busy = True
            self._wake.notify_all()

    def settle(self) -> None:
        with self._wake:
            self._wake.wait_for(lambda: not self._busy)

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._thread.join()
        self._db.close()

    def _run(self) -> None:
        ledger = self._ledger
        copied, commits = time.monotonic(), 0
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stopping or self._busy, timeout=1.0)
                if self._stopping:
                    return
            batch = ledger._inflight
            try:
                with ledger._sql:
                    if batch is not None:
                        ledger.commit(self._db, batch)
                        ledger._inflight = None
                        commits += 1
                    # Each copy still holds up the event loop for a few to 30 ms (the GIL, and the disk),
                    # so it waits for a few MiB of log (or a minute), not for every commit.
                    if commits and (commits >= WAL_COPY_COMMITS or time.monotonic() - copied >= 60.0):
                        copy_wal(self._db)
                        copied, commits = time.monotonic(), 0
            except Exception:  # the thread must live on, whatever failed
                # The events are in the log and in memory: booking goes on, and this batch is tried
                # again in a second (a restart would replay it).
                log.exception("ledger: writing to %s failed; trying again", ledger._dir / "ledger.db")
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()


def _connect(data_dir: Path) -> sqlite3.Connection:
    db = sqlite3.connect(data_dir / "ledger.db", isolation_level=None, check_same_thread=False)
    # WAL with synchronous=normal: a committed batch survives a crash of the process, like the log's
    # flushed appends; neither is fsynced per notice. The WAL is copied into the database by the writer
    # thread (``copy_wal``), not at whichever commit fills it.
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=normal")
    db.execute("pragma wal_autocheckpoint=0")
    return db


def _insert(db: sqlite3.Connection, sql: str, width: int, rows: Sequence[tuple[object, ...]], chunk: int = 256) -> None:
    """``sql`` with many rows per statement: ``executemany`` would let go of the GIL and take it back at
    each row, and the event loop waited for it, up to milliseconds at a time."""
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        values = ",".join(["(" + ",".join("?" * width) + ")"] * len(part))
        db.execute(sql.format(values), [x for row in part for x in row])


def _whole_lines(path: Path, size: int) -> int:
    """Cut a partial last line off ``path`` (events are far shorter than 64 KiB); its new size."""
    with path.open("r+b") as f:
        start = max(0, size - 65536)
        f.seek(start)
        keep = start + f.read().rfind(b"\n") + 1
        f.truncate(keep)
    return keep


def _archive_seq(path: Path) -> int:
    return int(path.stem.removeprefix("events-"))


def _read(path: Path) -> Iterator[Event]:
    """A log's readable events."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for line in f:
            try:
                yield _decode.decode(line)
            except msgspec.DecodeError:
                continue


def _first_seq(path: Path) -> int | None:
    """The seq of a log's first readable event; None when it has none."""
    return next((event.seq for event in _read(path)), None)


def _merge(first: _Batch, then: _Batch) -> _Batch:
    if not then.events:
        return first
    first.events += then.events
    for kind, book in then.books.items():
        first.books[kind].update(book)
    return first  # its position is set again when it is taken


def copy_wal(db: sqlite3.Connection) -> tuple[int, int]:
    """Copy what the write-ahead log holds into the database, so that its space is reused: (frames in
    the log, frames copied). Passive: it waits for no reader."""
    _, frames, copied = db.execute("pragma wal_checkpoint(passive)").fetchone()
    return frames, copied
