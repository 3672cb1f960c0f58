"""The ``rtb`` command. Each package registers its own subcommands; this only assembles them.

Subcommand modules expose ``register(subparsers)`` and import their heavy dependencies inside the
handlers, so ``rtb --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order in ``rtb --help``.
COMMAND_MODULES = [
    "control.cli_commands",
    "bidder.cli",
    "bidder.models.cli",
    "bench.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtb", description="OpenRTB bidding server")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # the CLI's boundary: one line, not a traceback, for operator errors
        if getattr(exc, "operator_error", False) or isinstance(exc, ValueError | OSError):
            print(f"rtb: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
