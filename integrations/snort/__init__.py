"""Snort and Suricata interoperability: rule import and export, alert ingestion.

Public entry points: `importer.import_text`/`importer.import_file` (Snort
2.9, Snort 3 and Suricata rules to Shrike ASTs, with a per-file report),
`load_rules_file` here (what `shrike lint` and `shrike run` use for `.rules`
files), `export.export_rules` (Shrike ASTs to Snort 3 rule text) and
`alerts.read_alerts` (Snort alert files to `engine.events.Match`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integrations.snort.errors import Diagnostic
    from rules import ast

__all__ = ["load_rules_file"]


def load_rules_file(
    path: str | Path, flavor: str = "auto"
) -> tuple[list[ast.Rule], list[Diagnostic]]:
    """Every rule of a Snort/Suricata `.rules` file and the import diagnostics
    (see `integrations.snort.load.load_rules_file`)."""
    from integrations.snort.load import load_rules_file as load

    return load(path, flavor)
