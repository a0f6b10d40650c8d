"""The `shrike` console command: its subcommands come from the modules SUBCOMMANDS names.

Each module exposes `register(subparsers)`, which adds its parsers and sets
`func` to a callable taking the parsed namespace and returning an exit code.
Library code raises typed errors; only this layer prints and exits.

Only the module of the subcommand named on the command line is imported (the
others bring in numba, Hyperscan or scikit-learn, seconds of start-up that
`shrike fmt` or `shrike lint` have no use for); without one, all are, for the
overall help and the list of choices.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Subcommand -> the module under engine.cli that registers it; add a subcommand here.
SUBCOMMANDS: dict[str, str] = {
    "flows": "flows",
    "lint": "lint",
    "attack": "attack",
    "run": "run",
    "demo": "demo",
    "fmt": "fmt",
    "alerts": "alerts",
    "es-setup": "elastic",
    "es-replay": "elastic",
    "kibana-import": "elastic",
    "train": "train",
    "evaluate": "evaluate",
    "import-snort": "snort",
    "export-snort": "snort",
    "ingest-snort": "snort",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with only the subparsers of `command`'s module if it names a
    subcommand, else with all."""
    parser = argparse.ArgumentParser(
        prog="shrike",
        description="Shrike network intrusion detection engine.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    if command in SUBCOMMANDS:
        modules = [SUBCOMMANDS[command]]
    else:
        modules = list(dict.fromkeys(SUBCOMMANDS.values()))
    for name in modules:
        importlib.import_module(f"engine.cli.{name}").register(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names: its first word that is not an option (the
    top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(_command(argv)).parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="shrike: %(levelname)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
