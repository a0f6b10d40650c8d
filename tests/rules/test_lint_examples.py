"""Every lint check flags its documented bad example and accepts its documented good one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules.lint.check import Check
from rules.lint.reference import render_check_reference
from rules.lint.registry import default_registry
from rules.lint.runner import lint_paths

CHECKS = default_registry().checks
_INCLUDE = re.compile(r'^include "([^"]+)"', re.MULTILINE)


def _write_example(folder: Path, text: str, *, create_includes: bool) -> Path:
    """Writes the example as a rule file (and, for good examples, the files it includes)."""
    folder.mkdir()
    for included in _INCLUDE.findall(text) if create_includes else ():
        (folder / included).write_text("", encoding="utf-8")
    target = folder / "example.shrike"
    # surrogateescape lets an example stand for bytes that are not UTF-8.
    target.write_bytes(text.encode("utf-8", "surrogateescape"))
    return target


def _codes(path: Path) -> list[str]:
    return [d.code for d in lint_paths([path]).diagnostics if d.path == str(path)]


def test_registry_has_at_least_twenty_checks_in_every_family() -> None:
    assert len(CHECKS) >= 20
    assert {check.family.label for check in CHECKS} == {
        "syntax",
        "semantic",
        "attack",
        "performance",
        "style",
    }


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: f"{check.code}-{check.name}")
def test_bad_example_is_flagged(check: type[Check], tmp_path: Path) -> None:
    if check.code == "PRF003":
        pytest.importorskip("hyperscan", reason="PRF003 needs the hyperscan package")
    path = _write_example(tmp_path / "bad", check.example_bad, create_includes=False)
    assert check.code in _codes(path)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: f"{check.code}-{check.name}")
def test_good_example_is_not_flagged(check: type[Check], tmp_path: Path) -> None:
    path = _write_example(tmp_path / "good", check.example_good, create_includes=True)
    codes = _codes(path)
    assert check.code not in codes
    assert not [code for code in codes if code.startswith("SYN")], "good example must parse"


def test_docs_reference_every_check_as_generated() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "lint.md"
    text = docs.read_text(encoding="utf-8")
    assert render_check_reference(CHECKS) in text, "run `python -m rules.lint.reference`"
    for check in CHECKS:
        assert f"### {check.code} {check.name}" in text
