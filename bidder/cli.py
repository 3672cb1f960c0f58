"""``rtb bidder``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("bidder", help="run the OpenRTB bidder")
    p.add_argument("--campaigns", help="campaign file (JSON); default: examples/campaigns.json")
    p.add_argument("--bind", help="HOST:PORT to listen on (default 127.0.0.1:8080)")
    p.add_argument("--workers", type=int, help="worker processes (1: budgets are per process)")
    p.add_argument("--interface", choices=["asgi", "rsgi"], help="granian interface (default rsgi)")
    p.add_argument("--scheduling", choices=["batch", "normal"],
                   help="kernel scheduling policy of the server's threads (default batch: SCHED_BATCH)")
    p.add_argument("--public-url", help="base URL of notice URLs, as exchanges reach this bidder")
    p.add_argument("--data-dir", help="where state that survives a restart lives (default ./.data)")
    p.set_defaults(handler=_bidder)


def _settings(args: argparse.Namespace) -> Any:
    from bidder.settings import from_env

    return from_env(
        campaigns=getattr(args, "campaigns", None),
        bind=args.bind,
        workers=getattr(args, "workers", None),
        interface=getattr(args, "interface", None),
        scheduling=getattr(args, "scheduling", None),
        public_url=getattr(args, "public_url", None),
        data_dir=getattr(args, "data_dir", None),
    )


def _bidder(args: argparse.Namespace) -> int:
    from bidder.campaign import load_campaigns
    from bidder.server import serve

    settings = _settings(args)
    load_campaigns(settings.campaigns)  # refuse a bad file here, with its message, not in a worker
    serve(settings)
    return 0
