"""Reading Zeek logs: TSV with its header lines, JSON lines, and errors naming path:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.zeek.logs import ZeekLogError, iter_conn_tuples, read_log

TSV = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2024-01-01-00-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_pkts\tlocal_orig\ttunnel_parents\tconn_state
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tinterval\tcount\tbool\tset[string]\tstring
1300475167.096535\tCXWv6p3arKYeMETxOg\t141.142.220.202\t5353\t224.0.0.251\t5353\tudp\t-\t1\tT\t(empty)\tS0
XXXXXXXXXX.XXXXXX\tC2\t2001:db8::1\t80\t2001:db8::2\t443\ttcp\t0.25\t7\tF\ta,b\tSF
#close\t2024-01-01-00-00-01
"""


def test_tsv(tmp_path: Path) -> None:
    p = tmp_path / "conn.log"
    p.write_text(TSV)
    log = read_log(p)
    assert log.fields[:4] == ("ts", "uid", "id.orig_h", "id.orig_p")
    assert len(log.records) == 2
    a, b = log.records
    assert a["ts"] == pytest.approx(1300475167.096535)
    assert a["id.orig_p"] == 5353 and isinstance(a["id.orig_p"], int)
    assert a["duration"] is None  # unset
    assert a["local_orig"] is True and b["local_orig"] is False
    assert a["tunnel_parents"] == []
    assert b["tunnel_parents"] == ["a", "b"]
    assert b["ts"] == "XXXXXXXXXX.XXXXXX"  # canonified by btest: stays text
    assert b["duration"] == 0.25 and b["orig_pkts"] == 7
    keys = [k for k, _ in iter_conn_tuples(log)]
    assert keys == [
        ("141.142.220.202", 5353, "224.0.0.251", 5353, "udp"),
        ("2001:db8::1", 80, "2001:db8::2", 443, "tcp"),
    ]


def test_tsv_custom_separator(tmp_path: Path) -> None:
    p = tmp_path / "conn.log"
    p.write_text("#separator \\x7c\n#fields|a|b\n#types|count|string\n1|x\n")
    log = read_log(p)
    assert log.records == [{"a": 1, "b": "x"}]


def test_json_lines(tmp_path: Path) -> None:
    p = tmp_path / "conn.json"
    p.write_text(
        '{"ts":1.5,"id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":2,'
        '"proto":"tcp","orig_pkts":3}\n\n'
        '{"ts":2.5,"id.orig_h":"10.0.0.3","id.orig_p":5,"id.resp_h":"10.0.0.4","id.resp_p":6,'
        '"proto":"udp","service":"dns"}\n'
    )
    log = read_log(p)
    assert len(log.records) == 2
    assert "service" in log.fields and "orig_pkts" in log.fields
    assert log.records[0]["orig_pkts"] == 3
    assert [k for k, _ in iter_conn_tuples(log)][1] == ("10.0.0.3", 5, "10.0.0.4", 6, "udp")


def test_tsv_bad_value_count_names_path_and_line(tmp_path: Path) -> None:
    p = tmp_path / "conn.log"
    lines = TSV.splitlines()
    lines.insert(10, "1.0\tCbad\t10.0.0.1\t1\t10.0.0.2")  # line 11: too few values
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ZeekLogError) as ei:
        read_log(p)
    assert ei.value.line == 11
    assert str(ei.value).startswith(f"{p}:11:")


def test_json_bad_line_names_path_and_line(tmp_path: Path) -> None:
    p = tmp_path / "conn.json"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    with pytest.raises(ZeekLogError) as ei:
        read_log(p)
    assert ei.value.line == 3 and f"{p}:3:" in str(ei.value)


def test_json_non_object_line(tmp_path: Path) -> None:
    p = tmp_path / "conn.json"
    p.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(ZeekLogError) as ei:
        read_log(p)
    assert ei.value.line == 2


def test_data_before_fields(tmp_path: Path) -> None:
    p = tmp_path / "conn.log"
    p.write_text("#separator \\x09\n1\t2\n")
    with pytest.raises(ZeekLogError) as ei:
        read_log(p)
    assert ei.value.line == 2


def test_no_fields_header(tmp_path: Path) -> None:
    p = tmp_path / "conn.log"
    p.write_text("#separator \\x09\n")
    with pytest.raises(ZeekLogError, match="#fields"):
        read_log(p)


def test_missing_log(tmp_path: Path) -> None:
    with pytest.raises(ZeekLogError) as ei:
        read_log(tmp_path / "nope.log")
    assert "nope.log" in str(ei.value)
