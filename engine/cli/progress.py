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
