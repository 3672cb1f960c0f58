from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from bidder.models.errors import DataError
from bidder.models.transactions import read_transactions, summarise

from .support import LTV_DATA


def test_cdnow_summary_over_39_weeks_matches_the_published_summary() -> None:
    s = summarise(read_transactions(LTV_DATA / "CDNOW_sample.txt"), dt.date(1997, 1, 1), 39)
    summary_file = LTV_DATA / "cdnow_customers_summary_with_monetary.csv"
    published = np.genfromtxt(summary_file, delimiter=",", names=True)
    # Our ids are the file's first column; the published ID is its second.
    to_published = {}
    for line in (LTV_DATA / "CDNOW_sample.txt").read_text().splitlines():
        own, pub, *_ = line.split()
        to_published[own] = int(pub)
    row = np.array([to_published[i] for i in s.ids]) - 1
    assert len(s.ids) == published.shape[0] == 2357
    assert np.array_equal(s.x, published["x"][row])
    # The published files round to 2 decimals.
    assert np.abs(s.t_x - published["t_x"][row]).max() < 0.0051
    assert np.abs(s.T - published["T"][row]).max() < 0.0051
    assert np.abs(s.monetary - published["zbar"][row]).max() < 0.0051


def test_csv_transactions_summarise_like_cdnow(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "customer_id,date,amount\n"
        "a,2024-01-01,10\na,2024-01-01,5\na,2024-01-15,20\na,2024-01-29,40\nb,2024-01-08,7\n"
        "c,2024-03-01,9\n"
    )
    s = summarise(read_transactions(path), dt.date(2024, 1, 1), 5)
    assert s.ids == ["a", "b"]  # c bought after the calibration period
    assert s.x.tolist() == [2.0, 0.0]
    assert s.t_x.tolist() == [4.0, 0.0]
    assert s.T.tolist() == pytest.approx([34 / 7, 27 / 7])
    assert s.monetary.tolist() == [30.0, 0.0]  # same-day purchases are one transaction


def test_bad_transaction_line_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,10\na,2024-13-01,5\n")
    with pytest.raises(DataError, match=r"tx.csv: line 3"):
        read_transactions(path)


def test_csv_without_the_expected_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("id,when,value\na,2024-01-01,10\n")
    with pytest.raises(DataError, match="header must be customer_id,date,amount"):
        read_transactions(path)
