"""``rtb control`` (the control-plane server) and ``rtb keys create`` (a new API key, printed once)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
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
