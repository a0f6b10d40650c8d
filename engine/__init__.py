"""The Shrike runtime: decoding, flows, matching, detectors, fusion, sinks and the `shrike` CLI."""

# First: the guard that loads a compiled module only while its source is unchanged
from rules import _compiled  # noqa: F401
