"""The packaged ATT&CK catalog and the Navigator coverage layer built from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.attack import AttackCatalogError, catalog_from_document, load_catalog
from rules.attack.navigator import CoveredTechnique, build_coverage_layer, claims_from_rules
from rules.attack.refresh import CATALOG_FILE, build_catalog_document, main

SHARED_ATTACK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "attack"
needs_shared = pytest.mark.skipif(
    not (SHARED_ATTACK / "enterprise-techniques.csv").is_file(),
    reason=f"ATT&CK source tables not found at {SHARED_ATTACK}",
)


def test_catalog_holds_attack_v18_1_enterprise() -> None:
    catalog = load_catalog()
    assert catalog.attack_version == "18.1"
    assert catalog.domain == "enterprise-attack"
    # Breakdown published with the v18.1 tables: 216 techniques + 475 sub-techniques current.
    current = catalog.current_techniques()
    assert sum(not t.is_subtechnique for t in current) == 216
    assert sum(t.is_subtechnique for t in current) == 475
    assert sum(t.revoked for t in catalog) == 132
    assert sum(t.deprecated for t in catalog) == 12
    assert [t.short_name for t in catalog.tactics][:3] == [
        "reconnaissance",
        "resource-development",
        "initial-access",
    ]
    assert len(catalog.tactics) == 14


def test_technique_lookup_and_relations() -> None:
    catalog = load_catalog()
    scan = catalog.technique("T1046")
    assert scan.name == "Network Service Discovery"
    assert scan.tactics == ("discovery",)
    assert not scan.is_subtechnique and scan.parent_id == "T1046"
    powershell = catalog.technique("T1059.001")
    assert powershell.is_subtechnique and powershell.parent_id == "T1059"
    assert catalog.belongs_to("T1046", "discovery")
    assert catalog.belongs_to("T1046", "TA0007")
    assert not catalog.belongs_to("T1046", "impact")
    # Valid Accounts serves four tactics at once.
    assert set(catalog.technique("T1078").tactics) == {
        "defense-evasion",
        "persistence",
        "privilege-escalation",
        "initial-access",
    }


def test_revoked_and_deprecated_flags_are_carried() -> None:
    catalog = load_catalog()
    assert catalog.technique("T1043").deprecated  # Commonly Used Port
    revoked = [t for t in catalog if t.revoked]
    assert revoked and all(not t.is_current for t in revoked)


def test_tactic_lookup_accepts_id_short_and_display_names() -> None:
    catalog = load_catalog()
    assert catalog.tactic("TA0011").short_name == "command-and-control"
    assert catalog.tactic("Command and Control").tactic_id == "TA0011"
    assert catalog.tactic("lateral_movement").tactic_id == "TA0008"
    assert not catalog.has_tactic("exploitation")


def test_unknown_lookups_raise_a_typed_error() -> None:
    catalog = load_catalog()
    with pytest.raises(AttackCatalogError, match="T9999 is not a technique"):
        catalog.technique("T9999")
    with pytest.raises(AttackCatalogError, match="not a tactic"):
        catalog.tactic("TA9999")
    assert "T9999" not in catalog and "T1046" in catalog


def test_malformed_catalog_document_is_rejected() -> None:
    with pytest.raises(AttackCatalogError, match="malformed"):
        catalog_from_document({"tactics": [], "techniques": [["T1", "x"]]})
    with pytest.raises(AttackCatalogError, match="malformed"):
        catalog_from_document({"techniques": []})


@needs_shared
def test_packaged_catalog_matches_the_source_tables() -> None:
    rebuilt = catalog_from_document(build_catalog_document(SHARED_ATTACK, "18.1"))
    assert rebuilt == load_catalog()


@needs_shared
def test_refresh_writes_the_packaged_file_byte_for_byte(tmp_path: Path) -> None:
    output = tmp_path / "catalog.json"
    assert main([str(SHARED_ATTACK), "-o", str(output)]) == 0
    assert output.read_bytes() == CATALOG_FILE.read_bytes()


def test_refresh_reports_a_bad_flag_with_its_row(tmp_path: Path) -> None:
    (tmp_path / "tactics.csv").write_text(
        "tactic_id,short_name,name,deprecated\nTA0007,discovery,Discovery,false\n"
    )
    (tmp_path / "enterprise-techniques.csv").write_text(
        "technique_id,name,tactics,is_subtechnique,deprecated,revoked\n"
        "T1046,Network Service Discovery,discovery,false,maybe,false\n"
    )
    with pytest.raises(ValueError, match=r"enterprise-techniques.csv:2: column 'deprecated'"):
        build_catalog_document(tmp_path, "18.1")


def test_coverage_layer_scores_techniques_by_rule_count() -> None:
    claims = [
        CoveredTechnique("T1046", "9000001 SYN scan"),
        CoveredTechnique("T1046", "9000002 UDP scan"),
        CoveredTechnique("T1059.001", "9000003 PowerShell download cradle"),
        CoveredTechnique("T1071.001", "9000004 beacon", tactic="command-and-control"),
    ]
    result = build_coverage_layer(claims, load_catalog(), name="test layer")
    layer = result.layer
    assert result.skipped == ()
    assert layer["domain"] == "enterprise-attack"
    assert layer["versions"] == {"attack": "18", "navigator": "5.1.0", "layer": "4.5"}
    by_id = {(t["techniqueID"], t.get("tactic")): t for t in layer["techniques"]}
    assert by_id[("T1046", None)]["score"] == 2
    assert [m["value"] for m in by_id[("T1046", None)]["metadata"]] == [
        "9000001 SYN scan",
        "9000002 UDP scan",
    ]
    assert by_id[("T1071.001", "command-and-control")]["score"] == 1
    # A covered sub-technique expands its parent, which carries no score of its own.
    assert by_id[("T1059", None)] == {"techniqueID": "T1059", "showSubtechniques": True}
    gradient = layer["gradient"]
    assert gradient["maxValue"] > gradient["minValue"]
    json.dumps(layer)  # the layer is plain JSON


def test_coverage_layer_skips_claims_it_cannot_place() -> None:
    claims = [
        CoveredTechnique("T9999", "1 unknown"),
        CoveredTechnique("T1043", "2 deprecated"),
        CoveredTechnique("T1046", "3 wrong tactic", tactic="impact"),
        CoveredTechnique("T1046", "4 fine"),
    ]
    result = build_coverage_layer(claims, load_catalog())
    reasons = {claim.rule_label: reason for claim, reason in result.skipped}
    assert set(reasons) == {"1 unknown", "2 deprecated", "3 wrong tactic"}
    assert "deprecated" in reasons["2 deprecated"]
    assert "does not belong to tactic impact" in reasons["3 wrong tactic"]
    assert [t["techniqueID"] for t in result.layer["techniques"]] == ["T1046"]


def test_claims_follow_the_rules_tactics_and_skip_disabled_rules() -> None:
    from rules import ast

    header = ast.Header("tcp")
    rules = [
        ast.Rule("valid accounts", 1, header, techniques=("T1078",), tactics=("TA0001",)),
        ast.Rule("untargeted", 2, header, techniques=("T1078",)),
        ast.Rule("misfit tactic", 3, header, techniques=("T1046",), tactics=("TA0040",)),
        ast.Rule("off", 4, header, techniques=("T1046",), enabled=False),
    ]
    assert claims_from_rules(rules, load_catalog()) == [
        CoveredTechnique("T1078", "1 valid accounts", "initial-access"),
        CoveredTechnique("T1078", "2 untargeted"),
        CoveredTechnique("T1046", "3 misfit tactic"),
    ]
