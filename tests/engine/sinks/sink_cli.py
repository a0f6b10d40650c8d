"""Runs Shrike's output subcommands as `shrike` would, through their own parsers only."""

from __future__ import annotations

import argparse

from engine.cli import alerts, elastic


def shrike(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="shrike")
    sub = parser.add_subparsers(dest="command", required=True)
    alerts.register(sub)
    elastic.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
