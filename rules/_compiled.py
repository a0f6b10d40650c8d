"""Which of Shrike's modules run compiled, and a guard against compiled code gone stale.

With a C compiler at install time, `setup.py` compiles the hot pure-Python modules
of the rule front end, the inspector and the matcher with mypyc (the list is
`COMPILED_MODULES` there) and writes a manifest, `_compiled.json`, holding the
SHA-256 of each source it compiled.  A compiled module sits next to its `.py`
file and Python would import it first, even after the `.py` changed (an editable
install being edited, a checkout of another revision).  The import hook
installed here lets a compiled module load only while every source of the
manifest still has the digest it was compiled from; otherwise each module loads
from its `.py` file, which behaves the same, only slower.  All or none: compiled
modules call one another directly, so one stale source makes the whole set load
from source.

`SHRIKE_PURE_PYTHON=1` loads every module from source.  `status()` says which
way modules load and why.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

MANIFEST = Path(__file__).with_name("_compiled.json")
PURE_ENV = "SHRIKE_PURE_PYTHON"
ROOT = Path(__file__).resolve().parent.parent  # the folder holding the `rules` package
_PACKAGES = ("rules", "engine")  # the packages setup.py compiles modules of


def _source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(manifest: Path, root: Path) -> tuple[frozenset[str], str]:
    """(modules compiled, why not) from a manifest: the modules are empty, with the
    reason, when it is missing, unreadable or any source changed since the build."""
    if os.environ.get(PURE_ENV):
        return frozenset(), f"{PURE_ENV} is set"
    try:
        sources = json.loads(manifest.read_text(encoding="utf-8"))["sources"]
    except FileNotFoundError:
        return frozenset(), "no compiled modules were built"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return frozenset(), f"unreadable manifest {manifest}: {error}"
    modules = []
    for relative, digest in sorted(sources.items()):
        source = root / relative
        try:
            current = _source_digest(source)
        except OSError:
            current = ""
        if current != digest:
            return frozenset(), f"{relative} changed since it was compiled (reinstall to rebuild)"
        modules.append(relative.removesuffix(".py").replace("/", "."))
    return frozenset(modules), ""


class _FreshCompiledFinder(importlib.abc.MetaPathFinder):
    """Finds Shrike's modules as the path finder does, but returns the `.py` file's
    spec in place of a compiled module that is not in the fresh manifest."""

    def __init__(self, manifest: Path, root: Path) -> None:
        self.manifest = manifest
        self.root = root
        self._fresh: tuple[frozenset[str], str] | None = None

    def fresh(self) -> tuple[frozenset[str], str]:
        if self._fresh is None:
            self._fresh = _read_manifest(self.manifest, self.root)
        return self._fresh

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] not in _PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return spec
        if fullname in self.fresh()[0]:
            return spec
        assert spec.origin is not None  # an extension module always has its file
        source = Path(spec.origin).with_name(fullname.rpartition(".")[2] + ".py")
        if not source.is_file():
            return spec
        return importlib.util.spec_from_file_location(fullname, source)


_finder = _FreshCompiledFinder(MANIFEST, ROOT)


def install() -> None:
    """Put the finder first on `sys.meta_path` (once)."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def status() -> str:
    """How Shrike's modules load: how many compiled, or from source and why."""
    modules, reason = _finder.fresh()
    if not modules:
        return f"modules load from source ({reason})"
    return f"{len(modules)} modules compiled with mypyc"


def is_compiled(module: ModuleType) -> bool:
    """Whether `module` was loaded from a compiled extension."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


install()
