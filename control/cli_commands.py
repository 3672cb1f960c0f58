"""``rtb control`` (the control-plane server) and ``rtb keys create`` (a new API key, printed once)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    up = sub.add_parser("up", help="run the bidder and the control plane on embedded defaults")
    up.add_argument("--bind", help="HOST:PORT of the bidder (default 127.0.0.1:8080)")
    up.add_argument("--control-bind", help="HOST:PORT of the control plane (default 127.0.0.1:8081)")
    up.set_defaults(handler=_up)

    p = sub.add_parser("control", help="run the control plane (campaign API, planner, reports, webhooks)")
    p.add_argument("--bind", default="127.0.0.1:8081", help="HOST:PORT to listen on (default 127.0.0.1:8081)")
    p.add_argument("--data-dir", help="where the SQLite store lives (default $RTB_DATA_DIR or ./.data)")
    p.set_defaults(handler=_control)

    keys = sub.add_parser("keys", help="manage control-plane API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = ksub.add_parser("create", help="create an API key and print it (it is shown only this once)")
    create.add_argument("--scope", choices=["read", "write", "admin"], default="read")
    create.add_argument("--name", default="", help="a note to recognise the key by")
    create.add_argument("--data-dir",
                        help="the control plane's data directory (default $RTB_DATA_DIR or ./.data)")
    create.set_defaults(handler=_keys_create)


def _up(args: argparse.Namespace) -> int:
    """The bidder (example campaigns, plus whatever the control plane manages) and the control plane,
    on embedded defaults: nothing to start by hand. If the control plane exits on its own, the bidder is
    stopped too and ``rtb up`` exits 1: half of ``rtb up`` running would look like all of it."""
    import os
    import signal
    import threading

    from bidder.campaign import load_campaigns
    from bidder.launch import ensure_free, hold_data_dir
    from bidder.server import serve as serve_bidder
    from bidder.settings import from_env, split_bind
    from control.auth import new_key
    from control.server import spawn, stop

    key = os.environ.get("RTB_ADMIN_KEY") or new_key()
    control_bind = args.control_bind or os.environ.get("RTB_CONTROL_BIND", "127.0.0.1:8081")
    settings = from_env(bind=args.bind, control_url=f"http://{control_bind}", control_key=key)
    load_campaigns(settings.campaigns)  # refuse a bad campaign file before starting anything
    ensure_free(*split_bind(control_bind, "--control-bind"), "the control plane, --control-bind")
    ensure_free(settings.host, settings.port, "the bidder, --bind")
    hold_data_dir(settings.data_dir, "bidder")  # before the control plane starts: one rtb up per directory
    control = spawn(control_bind, data_dir=settings.data_dir, admin_key=key,
                    env={"RTB_BIDDER_URL": f"http://{settings.bind}"})
    print(f"control plane: http://{control_bind}  admin key: {key}"
          + ("" if os.environ.get("RTB_ADMIN_KEY") else "  (set RTB_ADMIN_KEY to choose it)"), flush=True)
    stopping = threading.Event()

    def watch() -> None:
        code = control.wait()
        if not stopping.is_set():
            print(f"rtb up: the control plane exited ({code}); stopping the bidder", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # granian's main process: a stop like any other

    threading.Thread(target=watch, name="control-plane-watch", daemon=True).start()
    try:
        serve_bidder(settings)
    finally:
        stopping.set()
        lost = control.poll() is not None
        stop(control)
    return 1 if lost else 0


def _control(args: argparse.Namespace) -> int:
    from control.server import serve

    serve(args.bind, args.data_dir)
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    import time

    from control.auth import KeyStore
    from control.db import Database
    from control.settings import Settings

    settings = Settings.from_env(data_dir=args.data_dir)
    db = Database.in_dir(settings.data_dir)
    try:
        key = KeyStore(db).create(args.scope, args.name, time.time())
    finally:
        db.close()
    sys.stdout.write(key + "\n")
    sys.stderr.write(f"created an API key with scope {args.scope!r}; store it now, it is not shown again\n")
    return 0
