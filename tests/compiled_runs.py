"""Runs of a script with Shrike's compiled modules and from source, for the tests that
compare the two builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rules import _compiled


def run_json(script: str, args: list[str], *, pure: bool, cwd: Path) -> dict[str, object]:
    """What `script` (run with `args` in a fresh interpreter, from source when `pure`)
    prints as JSON."""
    env = {k: v for k, v in os.environ.items() if k != _compiled.PURE_ENV}
    if pure:
        env[_compiled.PURE_ENV] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result
