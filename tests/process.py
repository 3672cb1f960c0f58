"""Real server processes for end-to-end tests, synchronised on what they print, never on sleeps."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(args: Sequence[str], ready: str, env: dict[str, str] | None = None,
            timeout: float = 60.0) -> Iterator[list[str]]:
    """Run ``python -m control.cli *args`` until the block ends; returns once a line of its output
    contains ``ready`` (the lines seen so far are yielded, and keep growing)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "control.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    seen: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            seen.put(line)
        seen.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while True:
            try:
                line = seen.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {ready!r} within {timeout}s:\n{''.join(lines)}") from None
            if line is None:
                raise AssertionError(f"process exited ({proc.wait()}) before {ready!r}:\n{''.join(lines)}")
            if ready in line:
                break
        yield lines
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()
