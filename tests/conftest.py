"""Suite-wide guards and markers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _hyperscan_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled Hyperscan databases are cached in a folder of the session's, not in the
    user's cache (`engine.match.literals.cache_dir`); commands the tests start inherit it."""
    with pytest.MonkeyPatch.context() as patch:
        # `engine.match.literals.CACHE_ENV`, named here so that collecting the tests
        # does not load Hyperscan
        patch.setenv("SHRIKE_HS_CACHE", str(tmp_path_factory.mktemp("hyperscan-cache")))
        yield


@pytest.fixture(autouse=True)
def _no_address_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a frame with no destination MAC makes scapy send ARP or neighbour
    solicitations and wait for answers; tests must never put traffic on a network."""
    try:
        from scapy.layers import l2
    except ImportError:
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(
            "scapy tried to resolve a destination MAC on the network: "
            "give Ether(src=..., dst=...) explicitly in test traffic"
        )

    monkeypatch.setattr(l2.Neighbor, "resolve", refuse)
