"""The `shrike` command itself: its subcommands, and what starting one costs."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _registered(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_every_subcommand_is_registered_by_the_module_it_is_listed_with() -> None:
    assert sorted(_registered(build_parser())) == sorted(SUBCOMMANDS)
    for command, module in SUBCOMMANDS.items():
        alone = _registered(build_parser(command))
        assert command in alone
        assert alone == [c for c, m in SUBCOMMANDS.items() if m == module]


def test_the_overall_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    listed = capsys.readouterr().out.split("COMMAND", 2)[-1]
    assert re.findall(r"^    (\S+)", listed, re.MULTILINE) == list(SUBCOMMANDS)


def test_a_misspelt_subcommand_is_an_error_that_lists_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lnt", "rules/"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'lnt'" in err
    assert all(f"'{name}'" in err for name in SUBCOMMANDS)


@pytest.mark.parametrize(
    "argv", [["lint", "--help"], ["-v", "fmt", "--help"], ["attack", "--help"]]
)
def test_rule_file_commands_start_without_the_packet_engine(argv: list[str]) -> None:
    # numba, Hyperscan's matcher and scikit-learn cost seconds to import: a linter run
    # by CI or an editor on every save must not pay for them
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('numba', 'sklearn', 'engine.match.matcher', 'engine.anomaly')\n"
        "print('loaded:', *sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "loaded:"
