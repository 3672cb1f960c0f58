"""The ledger: a log committed in batches into SQLite; what a restart keeps, and what it replays."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

import msgspec
import pytest

from bidder.ledger import DAY, LOG, Event, Ledger, LedgerError, copy_wal

WEEK = 7 * DAY
T0 = 1_795_012_200.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def crash(ledger: Ledger) -> None:
    """Drop the ledger as a killed process would: nothing more is committed."""
    if ledger._writer is not None:
        ledger._writer.stop()
    ledger._file.close()
    ledger._db.close()


def bill(ledger: Ledger, bid_id: str, cost: int = 1000, campaign: str = "c1") -> Event:
    assert not ledger.seen("bill", bid_id)
    return ledger.append("bill", campaign_id=campaign, bid_id=bid_id, cost=cost, price=cost / 1000)


def test_a_restart_keeps_spend_and_booked_bids_and_replays_only_after_the_last_commit(tmp_path: Path) -> None:
    clock = Clock()
    first = Ledger(tmp_path, clock, WEEK, batch=4, background=False)
    for i in range(10):  # two commits of 4, then 2 events only in the log
        bill(first, f"b{i}")
    crash(first)
    again = Ledger(tmp_path, clock, WEEK, batch=4)
    assert again.replayed == 2
    assert again.spend["c1"] == 10_000 and again.seq == 10
    assert all(again.seen("bill", f"b{i}") for i in range(10))
    assert not again.seen("win", "b0") and not again.seen("bill", "b10")
    assert again.append("loss", campaign_id="c1").seq == 11
    again.close()
    third = Ledger(tmp_path, clock, WEEK, batch=4)
    assert third.replayed == 0 and third.spend["c1"] == 10_000 and third.seq == 11
    third.close()


def test_memory_holds_only_the_batches_not_yet_committed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, Clock(), WEEK, batch=8, keep=5)
    for i in range(100):
        bill(ledger, f"b{i}")
        ledger.settle()
    assert len(ledger._batch.events) < 8 and sum(map(len, ledger._batch.books.values())) < 8
    assert ledger._inflight is None
    assert len(ledger._recent) == 5
    assert ledger.seen("bill", "b0")  # from the database
    ledger.close()


def test_a_torn_last_line_is_cut_off_so_the_next_event_is_not_lost_with_it(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    first = Ledger(tmp_path, clock, WEEK)
    bill(first, "b1")
    first.close()
    with (tmp_path / LOG).open("ab") as f:
        f.write(b'{"seq":2,"ts":1795012200.0,"kind":"bi')  # a crash mid-write
    with caplog.at_level(logging.WARNING, "rtb.bidder"):
        second = Ledger(tmp_path, clock, WEEK)
    assert "torn last line" in caplog.text
    bill(second, "b2")  # not a batch yet: only in the log
    crash(second)  # again, before any commit
    third = Ledger(tmp_path, clock, WEEK)
    assert third.spend["c1"] == 2000 and third.seen("bill", "b2")
    assert third.since(0, 10)[-1].bid_id == "b2"
    third.close()


def test_a_log_shorter_than_its_last_commit_goes_on_from_its_last_whole_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    first = Ledger(tmp_path, clock, WEEK)
    for i in range(3):
        bill(first, f"b{i}")
    first.close()
    log_path = tmp_path / LOG
    size = log_path.stat().st_size
    os.truncate(log_path, size - 10)  # the OS crashed: the log lost what the database has
    with caplog.at_level(logging.WARNING, "rtb.bidder"):
        second = Ledger(tmp_path, clock, WEEK)
    assert "shorter" in caplog.text and log_path.read_bytes().endswith(b"\n")
    assert second.spend["c1"] == 3000 and second.seen("bill", "b2")
    bill(second, "b3")
    crash(second)
    third = Ledger(tmp_path, clock, WEEK)
    assert third.replayed == 1 and third.spend["c1"] == 4000
    third.close()


def test_an_unreadable_line_is_skipped_and_the_money_after_it_kept(tmp_path: Path) -> None:
    enc = msgspec.json.encode
    (tmp_path / LOG).write_bytes(
        enc(Event(seq=1, ts=T0, kind="bill", campaign_id="c1", bid_id="a", cost=5)) + b"\n" + b"{not json\n"
        + enc(Event(seq=3, ts=T0, kind="bill", campaign_id="c1", bid_id="b", cost=7)) + b"\n")
    ledger = Ledger(tmp_path, Clock(), WEEK)
    assert ledger.spend["c1"] == 12 and ledger.seq == 3 and ledger.replayed == 2
    ledger.close()


def test_a_log_from_before_the_database_is_replayed_once(tmp_path: Path) -> None:
    # Data directories written before ledger.db existed hold only events.jsonl.
    enc = msgspec.json.encode
    with (tmp_path / LOG).open("wb") as f:
        for i in range(25_000):  # past the replay's own step of 10,000
            f.write(enc(Event(seq=i + 1, ts=T0 - 60, kind="bill", campaign_id=f"c{i % 3}", bid_id=f"b{i}",
                              cost=10)) + b"\n")
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK)
    assert ledger.replayed == 25_000 and sum(ledger.spend.values()) == 250_000
    assert ledger.spend_last_day == {"c0": 83_340, "c1": 83_330, "c2": 83_330}
    ledger.close()
    again = Ledger(tmp_path, clock, WEEK)
    assert again.replayed == 0 and sum(again.spend.values()) == 250_000 and again.seen("bill", "b24999")
    again.close()


def test_the_log_is_archived_past_its_size_and_read_back_for_a_consumer_far_behind(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=4, keep=3, segment_bytes=500)
    for i in range(40):
        bill(ledger, f"b{i}")
        ledger.settle()
    archives = sorted(p.name for p in tmp_path.glob("events-*.jsonl"))
    assert len(archives) >= 2 and archives[0] == "events-000000000001.jsonl"
    assert [e.seq for e in ledger.since(0, 100)] == list(range(1, 41))
    assert [e.seq for e in ledger.since(17, 5)] == [18, 19, 20, 21, 22]
    assert [e.seq for e in ledger.since(38, 5)] == [39, 40]  # from memory
    ledger.close()
    again = Ledger(tmp_path, clock, WEEK, batch=4, segment_bytes=500)
    assert again.spend["c1"] == 40_000 and again.replayed == 0
    assert [e.seq for e in again.since(30, 100)] == list(range(31, 41))  # nothing in memory yet: from files
    again.close()


def test_a_crash_anywhere_across_archived_logs_replays_exactly_what_was_not_committed(tmp_path: Path) -> None:
    # Archiving commits nothing: a commit records the first seq of the log its position is in, and a
    # start replays from there through the later logs. Crash after every count of bills, so that the
    # last commit falls in an archive, in the log, and at the very start of either.
    clock = Clock()
    for total in range(1, 31):
        data = tmp_path / str(total)
        ledger = Ledger(data, clock, WEEK, batch=4, segment_bytes=400, background=False)
        for i in range(total):
            bill(ledger, f"b{i}")
        crash(ledger)
        again = Ledger(data, clock, WEEK, background=False)
        assert (again.replayed, again.spend["c1"], again.seq) == (total % 4, total * 1000, total), total
        assert [e.seq for e in again.since(0, 100)] == list(range(1, total + 1)), total
        bill(again, "next")
        again.close()
        third = Ledger(data, clock, WEEK, background=False)
        assert (third.replayed, third.spend["c1"]) == (0, (total + 1) * 1000), total
        third.close()
    assert len(list((tmp_path / "30").glob("events-*.jsonl"))) >= 3


def test_a_log_gone_after_archiving_books_nothing_twice(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK)
    for i in range(3):
        bill(ledger, f"b{i}")
    ledger.close()
    # Archived, and the crash came before a new log was begun.
    os.replace(tmp_path / LOG, tmp_path / "events-000000000001.jsonl")
    again = Ledger(tmp_path, clock, WEEK)
    assert again.replayed == 0 and again.spend["c1"] == 3000
    bill(again, "b3")
    crash(again)  # before any commit: the new log's event must still be replayed
    third = Ledger(tmp_path, clock, WEEK)
    assert third.replayed == 1 and third.spend["c1"] == 4000 and [e.seq for e in third.since(0, 10)] == [1, 2, 3, 4]
    third.close()


def test_bookings_are_forgotten_past_the_retention_and_a_day(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=1, background=False)
    bill(ledger, "old")
    clock.t += WEEK + DAY - 1
    assert ledger.seen("bill", "old")
    clock.t += 2
    assert not ledger.seen("bill", "old")
    bill(ledger, "new")  # its commit prunes the old booking from the database
    assert ledger._db.execute("select bid_id from seen").fetchall() == [("new",)]
    assert ledger._db.execute("select count(*) from spend_slot").fetchone() == (1,)
    assert ledger.spend["c1"] == 2000  # spend is for all time
    ledger.close()


def test_each_commit_forgets_at_most_twice_what_it_adds(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=2, background=False)
    for i in range(10):
        bill(ledger, f"old{i}")
    clock.t += WEEK + DAY + 1
    count = "select count(*) from seen where bid_id like 'old%'"
    left = []
    for i in range(6):
        bill(ledger, f"new{i}")  # a commit of 2 every second bill
        left.append(ledger._db.execute(count).fetchone()[0])
    assert left == [10, 6, 6, 2, 2, 0]
    ledger.close()


def test_the_last_day_of_spend_is_exact_after_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=1, background=False)
    bill(ledger, "two-days-ago", cost=500)
    clock.t += DAY + 1
    bill(ledger, "an-hour-ago", cost=700)
    ledger.close()
    clock.t += 3600
    again = Ledger(tmp_path, clock, WEEK)
    assert again.spend_last_day == {"c1": 700} and again.spend == {"c1": 1200}
    again.close()


def test_a_failed_commit_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=2, background=False)
    real = ledger._db
    ledger._db = _Broken(real)  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, "rtb.bidder"):
        for i in range(3):
            bill(ledger, f"b{i}")
    assert "writing to ledger.db failed" in caplog.text
    assert ledger.seen("bill", "b0") and len(ledger._batch.events) == 3
    ledger._db = real
    bill(ledger, "b3")  # the next commit writes all four
    assert not ledger._batch.events
    ledger.close()
    again = Ledger(tmp_path, clock, WEEK)
    assert again.spend["c1"] == 4000 and again.replayed == 0
    again.close()


def test_the_writer_thread_commits_batches_while_bookings_go_on(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=4)
    hold, threads = threading.Event(), []
    commit = ledger.commit

    def held(db: sqlite3.Connection, batch: object) -> None:
        threads.append(threading.get_ident())
        hold.wait()
        commit(db, batch)  # type: ignore[arg-type]

    ledger.commit = held  # type: ignore[method-assign]
    for i in range(6):  # the 4th hands the batch over; the writer holds it
        bill(ledger, f"b{i}")
    assert ledger._inflight is not None and ledger.seen("bill", "b1")  # in flight, still a duplicate
    assert all(ledger.seen("bill", f"b{i}") for i in range(6))
    hold.set()
    ledger.settle()
    assert ledger._inflight is None and threads and threading.get_ident() not in threads
    assert ledger.seen("bill", "b0")  # from the database now
    crash(ledger)
    again = Ledger(tmp_path, clock, WEEK, background=False)
    assert again.replayed == 2 and again.spend["c1"] == 6000
    again.close()


def test_the_write_ahead_log_is_copied_into_the_database_off_the_booking_path(tmp_path: Path) -> None:
    # Commits leave their pages in the write-ahead log (no copy, and no fsync, while a notice waits);
    # ``copy_wal``, which the writer thread runs every second, moves them into the database.
    ledger = Ledger(tmp_path, Clock(), WEEK, batch=1, background=False)
    for i in range(20):
        bill(ledger, f"b{i}")
    other = sqlite3.connect(tmp_path / "ledger.db")
    frames, copied = copy_wal(other)
    assert frames >= 20 and copied == frames
    other.close()
    ledger.close()


class _Broken:
    """A connection whose writes fail (a full disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: object) -> object:
        if sql == "begin":
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)


def test_the_writer_thread_keeps_a_batch_it_failed_to_commit_and_commits_it_later(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=2)
    writer = ledger._writer
    assert writer is not None
    real = writer._db
    writer._db = _Broken(real)  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, "rtb.bidder"):
        bill(ledger, "b0")
        bill(ledger, "b1")  # handed over; its commit fails
        writer.settle()
    assert "writing to" in caplog.text and ledger._inflight is not None
    assert ledger.seen("bill", "b0")  # still a duplicate meanwhile
    writer._db = real
    writer.hand(ledger._inflight)  # what its next wake-up (within a second) does
    writer.settle()
    assert ledger._inflight is None
    crash(ledger)
    again = Ledger(tmp_path, clock, WEEK, background=False)
    assert again.replayed == 0 and again.spend["c1"] == 2000
    again.close()


def test_a_lost_database_beside_archives_is_refused_rather_than_spend_forgotten(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, Clock(), WEEK, batch=4, segment_bytes=300, background=False)
    for i in range(10):
        bill(ledger, f"b{i}")
    ledger.close()
    assert list(tmp_path.glob("events-*.jsonl"))
    for p in tmp_path.glob("ledger.db*"):
        p.unlink()
    with pytest.raises(LedgerError, match="ledger.db is missing.*restore ledger.db"):
        Ledger(tmp_path, Clock(), WEEK)


def test_a_restored_copy_of_the_database_catches_up_from_the_logs(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, clock, WEEK, batch=4, segment_bytes=400)
    for i in range(10):
        bill(ledger, f"b{i}")
        ledger.settle()
    live, copy = sqlite3.connect(tmp_path / "ledger.db"), sqlite3.connect(tmp_path / "backup.db")
    live.backup(copy)  # as the README says, while it runs
    live.close()
    copy.close()
    for i in range(10, 25):
        bill(ledger, f"b{i}")
        ledger.settle()
    ledger.close()
    for p in tmp_path.glob("ledger.db*"):
        p.unlink()
    os.replace(tmp_path / "backup.db", tmp_path / "ledger.db")
    again = Ledger(tmp_path, clock, WEEK)
    assert again.spend["c1"] == 25_000 and again.seq == 25 and again.seen("bill", "b24")
    again.close()
