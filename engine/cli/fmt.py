"""`shrike fmt`: rewrite `.shrike` files in canonical layout, or with --check report which would change."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from rules import RuleError, RuleErrors, format_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fmt",
        help="format rule files in canonical layout",
        description="Format .shrike rule files (directories are searched for *.shrike). "
        "Exit 0: all files formatted; 1: with --check, some file would be reformatted; "
        "2: a file could not be read or parsed.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rule files or directories")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file would be reformatted"
    )
    parser.add_argument(
        "--diff", action="store_true", help="with --check, show what would change as a unified diff"
    )
    parser.set_defaults(func=run)


def _rule_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    found: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(path.rglob("*.shrike")))
        elif path.is_file():
            found.append(path)
        else:
            missing.append(raw)
    return found, missing


def run(args: argparse.Namespace) -> int:
    files, missing = _rule_files(args.paths)
    failed = False
    for raw in missing:
        print(f"{raw}: no such file or directory", file=sys.stderr)
        failed = True
    would_change: list[Path] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            failed = True
            continue
        try:
            formatted = format_text(text, str(path))
        except RuleErrors as errors:
            for error in errors:
                print(error.render(), file=sys.stderr)
            failed = True
            continue
        except RuleError as error:
            print(error.render(), file=sys.stderr)
            failed = True
            continue
        if formatted == text:
            continue
        would_change.append(path)
        if args.check:
            print(f"would reformat {path}")
            if args.diff:
                sys.stdout.writelines(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        formatted.splitlines(keepends=True),
                        fromfile=str(path),
                        tofile=f"{path} (formatted)",
                    )
                )
        else:
            path.write_text(formatted, encoding="utf-8")
            print(f"reformatted {path}")
    if failed:
        return 2
    if args.check and would_change:
        print(
            f"{len(would_change)} file(s) would be reformatted, {len(files) - len(would_change)} unchanged"
        )
        return 1
    return 0
