"""The whole suite reads the shared sample data: without it, stop at once and say where it was looked for."""

from __future__ import annotations

import pytest

from bench.shared import missing


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = missing()
    if problem is not None:
        raise pytest.UsageError(problem)
