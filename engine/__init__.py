"""The Shrike runtime: decoding, flows, matching, detectors, fusion, sinks and the `shrike` CLI."""
