"""Shrike's build: the metadata is in pyproject.toml; this adds the compiled modules.

With mypyc (a build requirement) and a C compiler, the hot pure-Python modules
below (rule front end, inspector, matcher) are compiled to C extensions that sit
next to their sources; a manifest of their sources' digests goes beside them
(`rules/_compiled.json`), and `rules/_compiled.py` loads a compiled module only
while its sources are unchanged.  Compilation is an accelerator: when it is not
possible (no compiler, `SHRIKE_PURE_PYTHON=1` at install time, a mypyc failure)
the build says why and installs the pure-Python package, which behaves the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# Modules that spend the time of `shrike lint` and, after the compiled packet
# kernels, of matching (`shrike run`): the inspector (reassembly, application
# parsing), the matcher and rule evaluation. Each behaves the same compiled, but
# for checking its functions' argument types against their annotations.
COMPILED_MODULES = [
    "engine/events.py",
    "engine/inspect/config.py",
    "engine/inspect/detect.py",
    "engine/inspect/dns.py",
    "engine/inspect/ftp.py",
    "engine/inspect/hpack.py",
    "engine/inspect/http.py",
    "engine/inspect/http2.py",
    "engine/inspect/inspector.py",
    "engine/inspect/smtp.py",
    "engine/inspect/stream.py",
    "engine/inspect/tls.py",
    "engine/match/conditions.py",
    "engine/match/matcher.py",
    "engine/match/payload.py",
    "rules/_fast_parser.py",
    "rules/attack/catalog.py",
    "rules/lint/checks/attack.py",
    "rules/lint/checks/performance.py",
    "rules/lint/checks/semantic.py",
    "rules/lint/checks/style.py",
    "rules/lint/runner.py",
    "rules/lint/walk.py",
]
MANIFEST = "rules/_compiled.json"


def _say(message: str) -> None:
    print(f"shrike build: {message}", file=sys.stderr)


def compiled_extensions() -> list:
    if os.environ.get("SHRIKE_PURE_PYTHON"):
        _say("SHRIKE_PURE_PYTHON is set: installing pure Python")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _say("mypyc is not available: installing pure Python")
        return []
    cwd = os.getcwd()
    os.chdir(HERE)
    try:
        extensions = mypycify(COMPILED_MODULES, opt_level="3", group_name="shrike_compiled")
    except (Exception, SystemExit) as error:  # mypyc reports type errors by exiting
        _say(f"mypyc could not compile the modules ({error}): installing pure Python")
        return []
    finally:
        os.chdir(cwd)
    for extension in extensions:
        extension.optional = True  # a compiler error leaves the pure-Python module
    return extensions


class BuildCompiled(build_ext):
    """Builds the compiled modules; keeps them only if all of them built, and then
    writes the manifest of their sources' digests beside them."""

    def finalize_options(self) -> None:
        # mypyc runs here rather than when setup.py is loaded, which happens for
        # every step of an install, most of them not building anything.
        if self.distribution.ext_modules == [STAND_IN]:
            self.distribution.ext_modules = compiled_extensions()
        super().finalize_options()

    def run(self) -> None:
        super().run()
        if not self.extensions:
            return
        outputs = [Path(self.get_ext_fullpath(ext.name)) for ext in self.extensions]
        missing = [str(path) for path in outputs if not path.is_file()]
        manifest = Path(self.get_ext_fullpath("rules._fast_parser")).parent / Path(MANIFEST).name
        if missing:
            for path in outputs:
                path.unlink(missing_ok=True)
            manifest.unlink(missing_ok=True)
            _say(f"{len(missing)} compiled modules failed to build: installing pure Python")
            return
        sources = {
            name: hashlib.sha256((HERE / name).read_bytes()).hexdigest()
            for name in COMPILED_MODULES
        }
        manifest.write_text(json.dumps({"sources": sources}, indent=1) + "\n", encoding="utf-8")
        _say(f"compiled {len(COMPILED_MODULES)} modules with mypyc")


# A stand-in until `build_ext` runs: it marks the distribution as having compiled parts.
STAND_IN = Extension("rules._fast_parser", sources=[])
setup(
    ext_modules=[STAND_IN],
    cmdclass={"build_ext": BuildCompiled},
)
