"""A packet progress bar on standard error, shown only when it is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def packet_progress(*, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    if not (enabled and sys.stderr.isatty()):
        yield lambda n: None
        return
    from tqdm import tqdm

    bar = tqdm(unit=" pkt", unit_scale=True, file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()


def note_first_compile() -> None:
    """Say so when the packet-path kernels have no compiled cache yet (the first run)."""
    from pathlib import Path

    from engine import flowkernel

    cache = Path(flowkernel.__file__).parent / "__pycache__"
    if not any(cache.glob("flowkernel.flow_kernel-*.nbi")):
        print(
            "shrike: first run: compiling the packet-path kernels "
            "(about half a minute, once; later runs load them from the cache)",
            file=sys.stderr,
        )
