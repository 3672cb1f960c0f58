"""The granian factory: what it leaves in place before the worker takes a connection."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from bidder.server import create_app


def test_the_worker_freezes_its_start_up_heap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RTB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTB_NOTICE_SECRET", "s" * 32)
    gc.unfreeze()
    try:
        app = create_app()
        try:
            assert app.bidder.ready
            # The campaigns, the index and the kernels' arrays are out of the collector's generations,
            # so a full collection does not walk them.
            assert gc.get_freeze_count() > 0
            assert not any(o is app.bidder.engine.index for o in gc.get_objects())
        finally:
            app.close()
    finally:
        gc.unfreeze()
