"""Loading config/shrike.yaml into the validated configuration tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import DEFAULT_CONFIG, ConfigError, ShrikeConfig, load_config
from engine.flows import FlowTableConfig


def test_shipped_defaults_match_the_built_in_defaults() -> None:
    # the YAML documents every flow setting; it must not drift from the code
    assert DEFAULT_CONFIG.exists()
    assert load_config() == ShrikeConfig()
    text = DEFAULT_CONFIG.read_text()
    for name in FlowTableConfig.__dataclass_fields__:
        if name != "export_buffer":
            assert f"  {name}:" in text, f"{name} is not documented in config/shrike.yaml"


def test_settings_override_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data_dir: /srv/shrike\nflows:\n  max_flows: 1000\n  udp_timeout: 30.5\n")
    cfg = load_config(p)
    assert cfg.data_dir == "/srv/shrike"
    assert cfg.flows.max_flows == 1000
    assert cfg.flows.udp_timeout == 30.5
    assert cfg.flows.tcp_timeout == FlowTableConfig().tcp_timeout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flows:\n  max_flow: 3\n", "flows.max_flow: unknown setting (did you mean max_flows?)"),
        ("flow:\n  max_flows: 3\n", "flow: unknown setting (did you mean flows?)"),
        ("flows:\n  tcp_timeout: soon\n", "flows.tcp_timeout: expected a number, got 'soon'"),
        ("flows:\n  max_flows: 0\n", "max_flows must be at least 1"),
        ("flows: [1, 2]\n", "flows: must be a mapping of settings"),
        ("flows:\n  max_flows: 3\n bad: [\n", "line 3"),
        ("- 1\n", "the top level must be a mapping"),
    ],
)
def test_bad_settings_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(p) in str(info.value)
    assert expected in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
