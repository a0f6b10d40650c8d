"""The compiled modules: loaded only while their sources are unchanged, and the same as source."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

import pytest
from tests.compiled_runs import run_json

import rules
import rules.lint
from rules import _compiled

ROOT = Path(rules.__file__).resolve().parent.parent
BUILT = _compiled.MANIFEST.is_file()
needs_build = pytest.mark.skipif(
    not BUILT, reason="no compiled modules here (installed without a C compiler or mypyc)"
)


def _manifest(tmp_path: Path, sources: dict[str, str]) -> Path:
    path = tmp_path / "_compiled.json"
    path.write_text(json.dumps({"sources": sources}), encoding="utf-8")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_manifest_matching_its_sources_names_their_modules(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "mod.py"
    source.write_text("x = 1\n", encoding="utf-8")
    manifest = _manifest(tmp_path, {"pkg/mod.py": _digest(source)})
    assert _compiled._read_manifest(manifest, tmp_path) == (frozenset({"pkg.mod"}), "")


def test_one_changed_source_sends_every_module_back_to_source(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    first, second = tmp_path / "pkg" / "a.py", tmp_path / "pkg" / "b.py"
    first.write_text("x = 1\n", encoding="utf-8")
    second.write_text("y = 2\n", encoding="utf-8")
    manifest = _manifest(tmp_path, {"pkg/a.py": _digest(first), "pkg/b.py": _digest(second)})
    second.write_text("y = 3\n", encoding="utf-8")
    modules, reason = _compiled._read_manifest(manifest, tmp_path)
    assert modules == frozenset()
    assert reason == "pkg/b.py changed since it was compiled (reinstall to rebuild)"


def test_missing_or_broken_manifest_means_source(tmp_path: Path) -> None:
    assert _compiled._read_manifest(tmp_path / "absent.json", tmp_path) == (
        frozenset(),
        "no compiled modules were built",
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    modules, reason = _compiled._read_manifest(broken, tmp_path)
    assert modules == frozenset()
    assert reason.startswith(f"unreadable manifest {broken}")


def test_the_environment_switch_means_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "mod.py"
    source.write_text("x = 1\n", encoding="utf-8")
    manifest = _manifest(tmp_path, {"pkg/mod.py": _digest(source)})
    monkeypatch.setenv(_compiled.PURE_ENV, "1")
    assert _compiled._read_manifest(manifest, tmp_path) == (
        frozenset(),
        f"{_compiled.PURE_ENV} is set",
    )


@needs_build
def test_the_installed_build_is_fresh_and_loaded() -> None:
    import rules._fast_parser
    import rules.lint.runner

    modules, reason = _compiled._finder.fresh()
    assert reason == ""
    assert {"rules._fast_parser", "rules.lint.runner"} <= modules
    assert _compiled.is_compiled(rules._fast_parser)
    assert _compiled.is_compiled(rules.lint.runner)
    assert _compiled.status() == f"{len(modules)} modules compiled with mypyc"


@needs_build
def test_a_stale_build_loads_the_source_file(tmp_path: Path) -> None:
    sources = json.loads(_compiled.MANIFEST.read_text(encoding="utf-8"))["sources"]
    fresh = _compiled._FreshCompiledFinder(_manifest(tmp_path, sources), ROOT)
    spec = fresh.find_spec("rules.lint.walk", rules.lint.__path__)
    assert spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)

    stale = _compiled._FreshCompiledFinder(
        _manifest(tmp_path, {**sources, "rules/lint/walk.py": "0" * 64}), ROOT
    )
    spec = stale.find_spec("rules.lint.walk", rules.lint.__path__)
    assert spec is not None and spec.origin == str(ROOT / "rules" / "lint" / "walk.py")
    assert isinstance(spec.loader, importlib.machinery.SourceFileLoader)
    # Modules outside Shrike's packages are left to the other finders.
    assert stale.find_spec("json", None) is None


_LINT_EVERY_FIXTURE = """
import json, sys
from pathlib import Path
from rules import _compiled, parse_collecting
from rules.lint.config import LintConfig
from rules.lint.runner import Linter, ParsedSource
import rules._fast_parser
out = {"compiled": _compiled.is_compiled(rules._fast_parser), "files": {}}
sources = []
root = Path(sys.argv[1])
sys.path.insert(0, str(root / "bench"))
import lint as bench  # the benchmark's generator of realistic rules
texts = {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in root.rglob("*.shrike")}
texts["generated.shrike"] = bench.generate_ruleset(3000, 11)
for name, text in sorted(texts.items()):
    result = parse_collecting(text, name)
    out["files"][name] = [repr(result.file.statements), [str(e) for e in result.errors]]
    sources.append(ParsedSource(name, text, tuple(result.file.statements), tuple(result.errors)))
report = Linter(LintConfig()).lint(sources)
out["diagnostics"] = [repr(d) for d in report.diagnostics]
print(json.dumps(out))
"""


@needs_build
def test_compiled_and_source_modules_parse_and_lint_alike() -> None:
    def run(pure: bool) -> dict[str, object]:
        return run_json(_LINT_EVERY_FIXTURE, [str(ROOT)], pure=pure, cwd=ROOT)

    compiled, source = run(pure=False), run(pure=True)
    assert compiled.pop("compiled") is True
    assert source.pop("compiled") is False
    assert len(compiled["files"]) > 5  # type: ignore[arg-type]
    assert compiled["diagnostics"]  # the fixtures include rules every check flags
    assert compiled == source
