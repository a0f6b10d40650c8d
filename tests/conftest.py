"""Suite-wide guards and markers."""

from __future__ import annotations

import pytest


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
