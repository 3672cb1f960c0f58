"""Running the control plane under granian (one worker: SQLite and the background jobs live in it)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

from starlette.applications import Starlette

from bidder.settings import split_bind
from control.settings import Settings

log = logging.getLogger("rtb.control")


def create_app() -> Starlette:
    """Granian's factory target: the app from ``RTB_*`` (the launcher puts its flags there)."""
    from control.app import create_app as make

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per poll of the other side
    return make(Settings.from_env())


def serve(bind: str = "127.0.0.1:8081", data_dir: str | None = None, admin_key: str | None = None,
          target: str = "control.server:create_app") -> None:
    """Serve ``target``, an app factory like ``create_app``, until SIGINT/SIGTERM. Every answered write
    is already committed, so a stop loses nothing.

    ``admin_key`` (or ``RTB_ADMIN_KEY``) is registered as an admin key at start-up: how ``rtb up``
    gives itself and the bidder a key without a manual ``rtb keys create``.
    """
    from granian.constants import Interfaces, Loops

    from bidder.launch import hold_data_dir, serve_factory

    host, port = split_bind(bind, "--bind")
    if data_dir:
        os.environ["RTB_DATA_DIR"] = data_dir
    if admin_key:
        os.environ["RTB_ADMIN_KEY"] = admin_key
    settings = Settings.from_env()  # refuse bad settings here, with their message, not in the worker
    hold_data_dir(settings.data_dir, "control plane")
    serve_factory(target, address=host, port=port, interface=Interfaces.ASGI, workers=1, loop=Loops.asyncio)


def spawn(bind: str = "127.0.0.1:8081", data_dir: str | None = None, admin_key: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``rtb control`` as a child process (how ``rtb up`` runs it beside the bidder).

    The child inherits stdout/stderr, and leads a process group of its own (granian and its worker):
    stop it with ``stop``.
    """
    split_bind(bind, "--bind")
    child_env = {**os.environ, **(env or {})}
    if admin_key:
        child_env["RTB_ADMIN_KEY"] = admin_key
    args = [sys.executable, "-m", "control.cli", "control", "--bind", bind]
    if data_dir:
        args += ["--data-dir", data_dir]
    return subprocess.Popen(args, env=child_env, start_new_session=True)


def stop(child: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the child, granian's main process, which stops its worker; then SIGKILL to what is left
    of its process group after ``grace`` seconds.

    The kill is a last resort: a worker stopped while it starts now ends at once (``bidder.launch``).
    The control plane commits every write before answering it, so a kill loses nothing.
    """
    try:
        os.kill(child.pid, signal.SIGTERM)
        child.wait(timeout=grace)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        log.warning("the control plane did not stop within %.0f s of SIGTERM; killing it", grace)
    try:
        os.killpg(child.pid, signal.SIGKILL)  # and any worker left behind
    except ProcessLookupError:
        pass
    child.wait()
