from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bidder.models import cli, load_artefact, load_model

from .support import LTV_DATA


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rtb")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_models_cli_is_listed_in_the_rtb_command() -> None:
    from control.cli import COMMAND_MODULES

    assert "bidder.models.cli" in COMMAND_MODULES


def test_simulate_then_train_ctr_writes_a_loadable_artefact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "events.jsonl"
    assert run(["simulate", "--out", str(log), "--n", "20000", "--seed", "3"]) == 0
    assert len(log.read_text().splitlines()) == 20000
    assert run(["train", "ctr", "--events", str(log), "--out", str(tmp_path / "m"), "--bits", "16"]) == 0
    path = Path(capsys.readouterr().out.split("artefact: ")[1].split()[0])
    art = load_artefact(path, "ctr")
    assert art.meta.params["bits"] == 16 and 0.6 < art.meta.metrics["holdout_auc"] < 0.9
    assert load_model(path).version == art.meta.version


def test_train_ltv_on_cdnow_writes_the_published_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "users.csv"
    argv = ["train", "ltv", "--transactions", str(LTV_DATA / "CDNOW_sample.txt"), "--out", str(tmp_path),
            "--start", "1997-01-01", "--weeks", "39", "--users-out", str(users)]
    assert run(argv) == 0
    path = Path(capsys.readouterr().out.split("artefact: ")[1].split()[0])
    art = load_artefact(path, "ltv")
    assert [round(v, 3) for v in art.arrays["bg"]] == [0.243, 4.414, 0.793, 2.426]
    assert len(users.read_text().splitlines()) == 2358


def test_train_ctr_refuses_a_bad_event_line(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"campaign": "c", "converted": false, "ctx": {}}\n{"campaign": 1}\n')
    from bidder.models.errors import DataError

    with pytest.raises(DataError, match="events.jsonl: line 2"):
        run(["train", "ctr", "--events", str(log), "--out", str(tmp_path)])
