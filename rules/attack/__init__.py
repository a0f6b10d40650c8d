"""MITRE ATT&CK for Shrike: the packaged Enterprise catalog and Navigator layer export."""

from __future__ import annotations

from rules.attack.catalog import (
    TACTIC_ID_PATTERN,
    TECHNIQUE_ID_PATTERN,
    AttackCatalog,
    AttackCatalogError,
    Tactic,
    Technique,
    catalog_from_document,
    load_catalog,
)

__all__ = [
    "TACTIC_ID_PATTERN",
    "TECHNIQUE_ID_PATTERN",
    "AttackCatalog",
    "AttackCatalogError",
    "Tactic",
    "Technique",
    "catalog_from_document",
    "load_catalog",
]
