"""``rtb train ltv``, ``rtb train ctr`` and ``rtb simulate``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    train = subparsers.add_parser("train", help="train a model and write a versioned artefact")
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL")

    ltv = models.add_parser("ltv", help="BG/NBD + Gamma-Gamma customer value from transactions")
    ltv.add_argument("--transactions", required=True, help="CDNOW-format or customer_id,date,amount CSV file")
    ltv.add_argument("--out", default="models", help="artefact directory (default: models)")
    ltv.add_argument("--start", help="calibration start date YYYY-MM-DD (default: first transaction)")
    ltv.add_argument("--weeks", type=float, help="calibration length in weeks (default: all data)")
    ltv.add_argument("--horizon-weeks", type=float, default=52.0, help="LTV horizon (default: 52)")
    ltv.add_argument("--users-out", help="also write the customers' summaries as a users file")
    ltv.set_defaults(handler=_train_ltv)

    ctr = models.add_parser("ctr", help="FTRL conversion model from an impression event log")
    ctr.add_argument("--events", required=True, help="event log, JSON lines (see bidder/models/events.py)")
    ctr.add_argument("--out", default="models", help="artefact directory (default: models)")
    ctr.add_argument("--bits", type=int, default=20, help="log2 of the number of weights (default: 20)")
    ctr.add_argument("--epochs", type=int, default=1)
    ctr.add_argument("--holdout", type=float, default=0.1,
                     help="last fraction of the log, scored before learning from it, for metrics")
    ctr.set_defaults(handler=_train_ctr)

    sim = subparsers.add_parser("simulate", help="write a synthetic impression log with a known ground truth")
    sim.add_argument("--out", required=True, help="event log to write (JSON lines)")
    sim.add_argument("--n", type=int, default=100_000, help="impressions (default: 100000)")
    sim.add_argument("--seed", type=int, default=1, help="world and draw seed (default: 1)")
    sim.set_defaults(handler=_simulate)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _train_ltv(args: argparse.Namespace) -> int:
    import datetime as dt
    from pathlib import Path

    from bidder.models.artefact import save_artefact, sha256_hex
    from bidder.models.ltv import fit_ltv
    from bidder.models.transactions import read_transactions, summarise
    from bidder.models.users import write_users

    start = dt.date.fromisoformat(args.start) if args.start else None
    summary = summarise(read_transactions(args.transactions), start, args.weeks)
    params, metrics = fit_ltv(summary, args.horizon_weeks)
    path = save_artefact(
        args.out, "ltv", {"bg": params.bg, "gg": params.gg},
        sha256_hex(Path(args.transactions).read_bytes()), metrics,
        {"horizon_weeks": args.horizon_weeks, "time_unit": "week",
         "bgnbd": dict(zip(("r", "alpha", "a", "b"), params.bg.tolist(), strict=True)),
         "gamma_gamma": dict(zip(("p", "q", "gamma"), params.gg.tolist(), strict=True))},
    )
    if args.users_out:
        write_users(args.users_out, summary)
        _say(f"users: {args.users_out} ({len(summary.ids)} customers)")
    _say(f"artefact: {path}")
    names = ("r", "alpha", "a", "b", "p", "q", "gamma")
    _say(" ".join(f"{k}={v:.4g}" for k, v in zip(names, [*params.bg, *params.gg], strict=True)))
    return 0


def _train_ctr(args: argparse.Namespace) -> int:
    import numpy as np

    from bidder.models import ctr, metrics
    from bidder.models.artefact import save_artefact, sha256_hex
    from bidder.models.errors import DataError
    from bidder.models.events import read_events
    from bidder.models.features import FEATURES_VERSION

    if not 8 <= args.bits <= 28:
        raise DataError("--bits", f"must be between 8 and 28, got {args.bits}")
    if not 0 < args.holdout < 1:
        raise DataError("--holdout", f"must be a fraction in (0, 1), got {args.holdout}")
    events, data = read_events(args.events)
    weight, progressive = ctr.train(events, bits=args.bits, epochs=args.epochs)
    y = np.array([e.converted for e in events], dtype=np.float64)
    tail = slice(int(len(events) * (1 - args.holdout)), None)
    m = {
        "events": float(len(events)),
        "conversion_rate": float(y.mean()),
        "holdout_auc": metrics.auc(y[tail], progressive[tail]),
        "holdout_log_loss": metrics.log_loss(y[tail], progressive[tail]),
        "holdout_ece": metrics.ece(y[tail], progressive[tail]),
    }
    f = ctr.Ftrl()
    params = {"features_version": FEATURES_VERSION, "bits": args.bits, "epochs": args.epochs,
              "ftrl": {"alpha": f.alpha, "beta": f.beta, "l1": f.l1, "l2": f.l2}}
    path = save_artefact(args.out, "ctr", {"weight": weight}, sha256_hex(data), m, params)
    _say(f"artefact: {path}")
    _say(" ".join(f"{k}={v:.4g}" for k, v in m.items()))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from bidder.models.events import write_events
    from bidder.models.simulate import World

    events, p = World(args.seed).sample(args.n, args.seed)
    write_events(args.out, events)
    _say(f"wrote {len(events)} impressions to {args.out} (true mean P(conversion) {p.mean():.4f})")
    return 0
