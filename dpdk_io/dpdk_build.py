"""Builds, caches and loads the cffi extension over `dpdk_shim.c`.

The shim is compiled on first use (or by `python -m dpdk_io.dpdk_build`) into
`$XDG_CACHE_HOME/shrike/dpdk-<key>/` (default `~/.cache/shrike`), where the key
hashes the C source, the cdef, the DPDK version and flags, cffi and the Python
ABI, so a changed shim or an upgraded DPDK gets a fresh build. Compilation runs
in a child interpreter so compiler output never reaches this process's stdout;
a failed build quotes the compiler's error.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cffi

from dpdk_io.errors import SourceUnavailableError

MODULE_NAME = "_shrike_dpdk_shim"
DEFAULT_PKG_NAME = "libdpdk"
# Lets a user point at a differently named .pc file (and tests simulate a machine without DPDK).
PKG_NAME_ENV = "SHRIKE_DPDK_PKG"
SHIM_SOURCE = Path(__file__).with_name("dpdk_shim.c")
INSTALL_HINT = (
    "install the DPDK development files and pkg-config "
    "(Debian/Ubuntu: `apt-get install dpdk-dev pkg-config`), or set PKG_CONFIG_PATH "
    "to the directory holding libdpdk.pc"
)

# The C declarations Python sees; they mirror dpdk_shim.c (partial structs let
# the compiler fill in sizes and hidden fields).
CDEF = """
struct shrike_port {
    uint16_t port_id;
    uint16_t nb_rx_queues;
    uint16_t max_rx_queues;
    uint16_t rx_ring_size;
    int failed_step;
    char driver_name[64];
    ...;
};
struct shrike_rx_request {
    uint8_t *data;
    uint64_t data_capacity;
    int64_t *offsets;
    int32_t *lengths;
    int64_t *timestamps_ns;
    uint32_t max_packets;
    uint16_t burst_size;
    uint32_t idle_polls;
};
struct shrike_rx_result {
    uint32_t packets;
    uint64_t bytes;
    uint32_t host_timestamps;
    uint32_t stopped_idle;
    uint64_t polls;
};
struct shrike_port_stats {
    uint64_t ipackets;
    uint64_t ibytes;
    uint64_t imissed;
    uint64_t ierrors;
    uint64_t rx_nombuf;
};
#define SHRIKE_MAX_BURST ...
int shrike_eal_init(int argc, char **argv);
const char *shrike_strerror(int err);
const char *shrike_runtime_dir(void);
int shrike_port_count(void);
int shrike_port_by_name(const char *name);
int shrike_port_open(struct shrike_port *p, uint16_t port_id, uint16_t nb_rx_queues,
                     uint16_t rx_ring_size, uint32_t nb_mbufs, uint32_t cache_size);
int shrike_port_has_rx_timestamps(const struct shrike_port *p);
void shrike_port_use_timestamps(struct shrike_port *p, uint64_t unit_ns);
int shrike_rx_batch(struct shrike_port *p, const struct shrike_rx_request *req,
                    struct shrike_rx_result *res);
int shrike_port_stats(const struct shrike_port *p, struct shrike_port_stats *out);
int shrike_port_close(struct shrike_port *p);
"""


@dataclass(frozen=True, slots=True)
class LibDpdkFlags:
    """What pkg-config says about the installed DPDK."""

    pkg_name: str
    version: str
    cflags: tuple[str, ...]
    libs: tuple[str, ...]


def resolve_pkg_name(pkg_name: str | None = None) -> str:
    return pkg_name or os.environ.get(PKG_NAME_ENV) or DEFAULT_PKG_NAME


def _pkg_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pkg-config", *args], capture_output=True, text=True, check=False)


def probe_libdpdk(pkg_name: str | None = None) -> LibDpdkFlags:
    """Ask pkg-config for DPDK's version and flags, or say what to install."""
    name = resolve_pkg_name(pkg_name)
    if shutil.which("pkg-config") is None:
        raise SourceUnavailableError(
            f"DPDK source unavailable: pkg-config is not installed; {INSTALL_HINT}"
        )
    found = _pkg_config("--modversion", name)
    if found.returncode != 0:
        detail = found.stderr.strip().splitlines()
        reason = detail[0] if detail else f"package {name!r} not found"
        raise SourceUnavailableError(
            f"DPDK source unavailable: `pkg-config --modversion {name}` failed ({reason}); {INSTALL_HINT}"
        )
    flags = _pkg_config("--cflags", "--libs", name)
    cflags_run = _pkg_config("--cflags", name)
    libs_run = _pkg_config("--libs", name)
    if flags.returncode != 0 or cflags_run.returncode != 0 or libs_run.returncode != 0:
        raise SourceUnavailableError(
            f"DPDK source unavailable: `pkg-config --cflags --libs {name}` failed: "
            f"{(flags.stderr or cflags_run.stderr or libs_run.stderr).strip()}; {INSTALL_HINT}"
        )
    return LibDpdkFlags(
        pkg_name=name,
        version=found.stdout.strip(),
        cflags=tuple(cflags_run.stdout.split()),
        libs=tuple(libs_run.stdout.split()),
    )


def make_ffi(flags: LibDpdkFlags, shim_source: Path = SHIM_SOURCE) -> cffi.FFI:
    """The cffi builder: `set_source` over dpdk_shim.c with pkg-config's flags."""
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        MODULE_NAME,
        shim_source.read_text(encoding="utf-8"),
        extra_compile_args=[*flags.cflags, "-O3", "-Wno-unused-parameter"],
        extra_link_args=list(flags.libs),
    )
    return ffi


def build_key(flags: LibDpdkFlags, shim_source: Path = SHIM_SOURCE) -> str:
    digest = hashlib.sha256()
    for part in (
        shim_source.read_bytes(),
        CDEF.encode(),
        flags.version.encode(),
        " ".join(flags.cflags + flags.libs).encode(),
        cffi.__version__.encode(),
        (sysconfig.get_config_var("EXT_SUFFIX") or "").encode(),
    ):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shrike"


def _extension_path(directory: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = directory / f"{MODULE_NAME}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def build_shim(
    *, pkg_name: str | None = None, cache_root: Path | None = None, shim_source: Path = SHIM_SOURCE
) -> Path:
    """Return the compiled extension, building it into the cache if needed."""
    flags = probe_libdpdk(pkg_name)
    target_dir = (cache_root or default_cache_root()) / f"dpdk-{build_key(flags, shim_source)}"
    built = _extension_path(target_dir)
    if built is not None:
        return built
    try:
        target_dir.parent.mkdir(parents=True, exist_ok=True)
        return _compile_into_cache(flags, target_dir, shim_source)
    except OSError as exc:
        raise SourceUnavailableError(
            f"DPDK source unavailable: cannot write the shim cache {target_dir.parent} "
            f"({exc.strerror or exc}); set XDG_CACHE_HOME to a writable directory"
        ) from exc


def _compile_into_cache(flags: LibDpdkFlags, target_dir: Path, shim_source: Path) -> Path:
    with tempfile.TemporaryDirectory(dir=target_dir.parent, prefix=".build-") as tmp:
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "dpdk_io.dpdk_build",
                "--compile-into",
                tmp,
                "--pkg",
                flags.pkg_name,
                "--source",
                str(shim_source),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        produced = _extension_path(Path(tmp))
        if child.returncode != 0 or produced is None:
            raise SourceUnavailableError(
                f"DPDK source unavailable: building the DPDK shim ({shim_source}) against "
                f"{flags.pkg_name} {flags.version} failed; compiler output:\n"
                f"{_compiler_errors(child.stdout + child.stderr)}"
            )
        staged = Path(tmp) / "ready"
        staged.mkdir()
        os.replace(produced, staged / produced.name)
        try:
            # Atomic publish: a concurrent builder that wins the race is just as good.
            os.rename(staged, target_dir)
        except OSError:
            if _extension_path(target_dir) is None:
                raise
    result = _extension_path(target_dir)
    assert result is not None
    return result


def _compiler_errors(output: str, limit: int = 20) -> str:
    lines = output.strip().splitlines()
    # gcc diagnostics ("file:line:col: error: ...") say more than the Python traceback around them.
    errors = [line for line in lines if ": error:" in line or ": fatal error:" in line]
    # The first diagnostics are the causes; later ones tend to follow from them.
    return "\n".join(errors[:limit] if errors else lines[-limit:])


def load_shim(*, pkg_name: str | None = None, cache_root: Path | None = None) -> ModuleType:
    """Build if needed, then import the extension (its `ffi` and `lib`)."""
    path = build_shim(pkg_name=pkg_name, cache_root=cache_root)
    loaded = sys.modules.get(MODULE_NAME)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise SourceUnavailableError(f"DPDK source unavailable: cannot load the built shim {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise SourceUnavailableError(
            f"DPDK source unavailable: the built shim {path} does not load ({exc}); "
            f"check that the DPDK runtime libraries match the development files, or delete "
            f"{path.parent} to rebuild"
        ) from exc
    sys.modules[MODULE_NAME] = module
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dpdk_io.dpdk_build",
        description="Build Shrike's DPDK shim into the cache and print where it is.",
    )
    parser.add_argument(
        "--pkg", default=None, help=f"pkg-config package name (default: {DEFAULT_PKG_NAME})"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="cache root (default: ~/.cache/shrike)"
    )
    parser.add_argument("--compile-into", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, default=SHIM_SOURCE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compile_into is not None:
        # Child mode of build_shim: compile in place; the parent captures all output.
        make_ffi(probe_libdpdk(args.pkg), args.source).compile(
            tmpdir=args.compile_into, verbose=False
        )
        return 0
    try:
        path = build_shim(pkg_name=args.pkg, cache_root=args.cache_dir)
    except SourceUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
