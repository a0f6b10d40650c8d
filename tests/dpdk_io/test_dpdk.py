"""Tests of the DPDK source: real EAL + net_pcap vdev runs, each in its own process, and the config loader."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dpdk_io.dpdk import DpdkConfig, DpdkConfigError, DpdkSource, load_dpdk_config
from dpdk_io.errors import SourceUnavailableError

REPO = Path(__file__).resolve().parents[2]
SHARED_PCAPS = REPO.parent / "shared" / "data" / "pcaps"
# Explicit addresses keep scapy from resolving MACs over the network while building frames.
SRC_MAC = "02:00:00:00:00:01"
DST_MAC = "02:00:00:00:00:02"


def _libdpdk_present() -> bool:
    if shutil.which("pkg-config") is None:
        return False
    return subprocess.run(["pkg-config", "--exists", "libdpdk"], check=False).returncode == 0


needs_dpdk = pytest.mark.skipif(
    not _libdpdk_present(),
    reason="DPDK development files not found (`pkg-config libdpdk` fails); "
    "install them with `apt-get install dpdk-dev pkg-config` to run the DPDK tests",
)


# --- a plain pcap read to compare against -------------------------------------------------


@dataclass(frozen=True)
class PlainRecord:
    data: bytes
    wirelen: int
    ts_ns: int


def read_pcap_plainly(path: Path) -> list[PlainRecord]:
    """Classic pcap only: global header, then (ts_sec, ts_frac, caplen, wirelen) + bytes per record."""
    raw = path.read_bytes()
    magic = raw[:4]
    order, frac_ns = {
        b"\xd4\xc3\xb2\xa1": ("<", 1000),
        b"\xa1\xb2\xc3\xd4": (">", 1000),
        b"\x4d\x3c\xb2\xa1": ("<", 1),
        b"\xa1\xb2\x3c\x4d": (">", 1),
    }[magic]
    records = []
    pos = 24
    while pos + 16 <= len(raw):
        sec, frac, caplen, wirelen = struct.unpack_from(order + "IIII", raw, pos)
        pos += 16
        records.append(
            PlainRecord(raw[pos : pos + caplen], wirelen, sec * 1_000_000_000 + frac * frac_ns)
        )
        pos += caplen
    return records


def write_pcap(
    path: Path, records: list[tuple[bytes, int]], *, nanosecond: bool = False, linktype: int = 1
) -> None:
    """Write (frame, timestamp_ns) records as a little-endian classic pcap."""
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, linktype))
        for frame, ts_ns in records:
            sec, rest = divmod(ts_ns, 1_000_000_000)
            frac = rest if nanosecond else rest // 1000
            out.write(struct.pack("<IIII", sec, frac, len(frame), len(frame)))
            out.write(frame)


@pytest.fixture(scope="module")
def scapy_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mixed traffic from scapy: several protocols, 60 B to 20 kB frames, out-of-order times."""
    scapy = pytest.importorskip("scapy.all")
    Ether, IP, IPv6, TCP, UDP, ICMP, Dot1Q, Raw = (
        scapy.Ether, scapy.IP, scapy.IPv6, scapy.TCP, scapy.UDP, scapy.ICMP, scapy.Dot1Q, scapy.Raw,
    )  # fmt: skip
    frames = []
    for i in range(1500):
        kind = i % 5
        payload = Raw(bytes((i + j) % 256 for j in range(i * 7 % 1400)))
        if kind == 0:
            pkt = (
                Ether(src=SRC_MAC, dst=DST_MAC)
                / IP(src="10.0.0.1", dst=f"10.0.{i % 200}.2")
                / TCP(sport=1024 + i, dport=80)
                / payload
            )
        elif kind == 1:
            pkt = (
                Ether(src=SRC_MAC, dst=DST_MAC)
                / IP(dst="192.0.2.9")
                / UDP(sport=53, dport=5000 + i)
                / payload
            )
        elif kind == 2:
            pkt = (
                Ether(src=SRC_MAC, dst=DST_MAC)
                / IPv6(dst="2001:db8::1")
                / TCP(dport=443, flags="S")
            )
        elif kind == 3:
            pkt = (
                Ether(src=SRC_MAC, dst=DST_MAC)
                / Dot1Q(vlan=i % 4000)
                / IP(dst="198.51.100.7")
                / ICMP()
            )
        else:
            pkt = Ether(src=SRC_MAC, dst=DST_MAC) / IP(dst="203.0.113.5") / UDP() / payload
        frames.append(bytes(pkt))
    # Frames larger than one mbuf's data room arrive as mbuf chains.
    frames[100] = bytes(Ether(src=SRC_MAC, dst=DST_MAC) / IP() / UDP() / Raw(b"J" * 9000))
    frames[900] = bytes(Ether(src=SRC_MAC, dst=DST_MAC) / IP() / UDP() / Raw(b"K" * 20000))
    base = 1_700_000_000_123_456_000
    stamps = [base + i * 1_001_000 for i in range(len(frames))]
    stamps[500] = (
        base - 5_000_000_000
    )  # an earlier time proves these are the file's, not the host's
    path = tmp_path_factory.mktemp("dpdk") / "mixed.pcap"
    write_pcap(path, list(zip(frames, stamps, strict=True)))
    return path


# --- running the source in a child process ------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from dpdk_io.batch import Source
    from dpdk_io.dpdk import DpdkConfig, DpdkSource

    spec = json.loads(sys.argv[1])
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
    result = {"batches": []}
    packets, caplens, wirelens, stamps = [], [], [], []
    try:
        source = DpdkSource.from_config(DpdkConfig(**settings), pcap=spec.get("pcap"))
        result["is_source"] = isinstance(source, Source)
        with source:
            for _ in range(spec.get("max_calls", 10**9)):
                batch = source.next_batch()
                if batch is None:
                    result["ended"] = True
                    break
                result["batches"].append(
                    {"len": len(batch), "first_index": batch.first_index, "nbytes": int(batch.data.nbytes),
                     "linktype": batch.linktype}
                )
                packets.extend(batch.packet(i) for i in range(len(batch)))
                caplens.extend(batch.caplens.tolist())
                wirelens.extend(batch.wirelens.tolist())
                stamps.extend(batch.timestamps.tolist())
            result["stats_open"] = source.stats().as_dict()
        result["stats_closed"] = source.stats().as_dict()
        for extra in spec.get("second_open", []):
            try:
                more = {**settings, **{k: tuple(v) if isinstance(v, list) else v for k, v in extra["config"].items()}}
                DpdkSource.from_config(DpdkConfig(**more), pcap=extra.get("pcap"))
                result.setdefault("second", []).append("opened")
            except Exception as exc:
                result.setdefault("second", []).append(f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    np.savez(spec["out"], data=np.frombuffer(b"".join(packets), dtype=np.uint8),
             caplens=np.asarray(caplens, dtype=np.int64), wirelens=np.asarray(wirelens, dtype=np.int64),
             stamps=np.asarray(stamps, dtype=np.int64))
    with open(spec["out"] + ".json", "w") as fh:
        json.dump(result, fh)
    """
)


@dataclass
class ChildRun:
    result: dict
    packets: list[bytes]
    caplens: list[int]
    wirelens: list[int]
    stamps: list[int]
    stdout: str
    stderr: str


def child_eal_args(prefix: str) -> list[str]:
    return ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry",
            "--log-level=*:error", f"--file-prefix={prefix}"]  # fmt: skip


def run_child(tmp_path: Path, config: dict, *, pcap: Path | None = None, env: dict | None = None,
              **spec_extra: object) -> ChildRun:  # fmt: skip
    prefix = f"shrike-test-{uuid.uuid4().hex[:12]}"
    config = {"eal_args": child_eal_args(prefix), **config}
    out = tmp_path / f"child-{prefix}"
    spec = {
        "config": config,
        "pcap": str(pcap) if pcap else None,
        "out": str(out) + ".npz",
        **spec_extra,
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        check=False,
    )
    shutil.rmtree(Path("/var/run/dpdk") / prefix, ignore_errors=True)
    assert proc.returncode == 0, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(Path(str(out) + ".npz.json").read_text())
    arrays = np.load(str(out) + ".npz")
    data = arrays["data"].tobytes()
    caplens = arrays["caplens"].tolist()
    packets, pos = [], 0
    for n in caplens:
        packets.append(data[pos : pos + n])
        pos += n
    return ChildRun(result, packets, caplens, arrays["wirelens"].tolist(), arrays["stamps"].tolist(),
                    proc.stdout, proc.stderr)  # fmt: skip


def assert_same_as_plain_read(run: ChildRun, capture: Path, *, ts_resolution_ns: int = 1) -> None:
    assert "error" not in run.result, run.result.get("error")
    expected = read_pcap_plainly(capture)
    assert len(run.packets) == len(expected)
    for i, (got, want) in enumerate(zip(run.packets, expected, strict=True)):
        assert got == want.data, f"packet {i} bytes differ"
        assert run.caplens[i] == len(want.data), f"packet {i} caplen"
        assert run.stamps[i] == want.ts_ns // ts_resolution_ns * ts_resolution_ns, (
            f"packet {i} timestamp"
        )
    # net_pcap gives DPDK only the captured bytes, so the wire length is the captured length.
    assert run.wirelens == run.caplens
    # Batches tile the capture: consecutive first_index values, nothing lost or repeated.
    index = 0
    for batch in run.result["batches"]:
        assert batch["first_index"] == index
        assert batch["linktype"] == 1
        index += batch["len"]
    assert index == len(expected)


# --- DPDK runs ------------------------------------------------------------------------------


@needs_dpdk
@pytest.mark.dpdk
@pytest.mark.parametrize(
    ("burst_size", "batch_packets", "batch_bytes"),
    [(64, 8192, 8 << 20), (32, 100, 8 << 20), (7, 1000, 256 * 1024)],
    ids=["one-batch", "packet-limited", "byte-limited"],
)
def test_replay_delivers_every_packet_as_the_file_holds_it(
    tmp_path: Path, scapy_capture: Path, burst_size: int, batch_packets: int, batch_bytes: int
) -> None:
    run = run_child(
        tmp_path,
        {"burst_size": burst_size, "batch_packets": batch_packets, "batch_bytes": batch_bytes},
        pcap=scapy_capture,
    )
    assert_same_as_plain_read(run, scapy_capture)
    assert run.result.get("ended") is True
    assert run.result["is_source"] is True
    for batch in run.result["batches"]:
        assert batch["len"] <= batch_packets
        assert batch["nbytes"] <= batch_bytes
    total = len(run.packets)
    total_bytes = sum(run.caplens)
    if batch_packets == 100:
        assert len(run.result["batches"]) == -(-total // 100)
    for stats in (run.result["stats_open"], run.result["stats_closed"]):
        assert stats["packets"] == total
        assert stats["bytes"] == total_bytes
        assert stats["batches"] == len(run.result["batches"])
        assert stats["port_ipackets"] == total
        assert stats["port_ibytes"] == total_bytes
        assert stats["dropped"] == 0
        assert stats["host_timestamps"] == 0


REAL_CAPTURES = [
    "ndpi/bittorrent.pcap",
    "ndpi/quic.pcap",
    "suricata-verify/http-body-hook-01.pcap",
    "zeek/chromium-115.0.5790.110-google-de-fragmented.pcap",
]


@needs_dpdk
@pytest.mark.dpdk
@pytest.mark.shared
@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_real_capture_matches_plain_read(tmp_path: Path, name: str) -> None:
    capture = SHARED_PCAPS / name
    if not capture.is_file():
        pytest.skip(f"shared capture {capture} is absent (../shared/data not present)")
    run = run_child(tmp_path, {"batch_packets": 512}, pcap=capture)
    assert_same_as_plain_read(run, capture)


@needs_dpdk
@pytest.mark.dpdk
def test_same_packets_as_the_pcap_source(tmp_path: Path, scapy_capture: Path) -> None:
    pcap_module = pytest.importorskip("dpdk_io.pcap")
    run = run_child(tmp_path, {}, pcap=scapy_capture)
    packets: list[bytes] = []
    stamps: list[int] = []
    wirelens: list[int] = []
    with pcap_module.PcapSource(scapy_capture) as source:
        while (batch := source.next_batch()) is not None:
            packets.extend(batch.packet(i) for i in range(len(batch)))
            stamps.extend(batch.timestamps.tolist())
            wirelens.extend(batch.wirelens.tolist())
    assert run.packets == packets
    assert run.stamps == stamps
    assert run.wirelens == wirelens


@needs_dpdk
@pytest.mark.dpdk
def test_nanosecond_capture_arrives_at_microsecond_resolution(tmp_path: Path) -> None:
    capture = tmp_path / "ns.pcap"
    frame = bytes.fromhex("ffffffffffff0200000000010800") + bytes(46)
    write_pcap(
        capture,
        [(frame, 1_700_000_000_000_000_000 + i * 1_234_567 + 999) for i in range(50)],
        nanosecond=True,
    )
    run = run_child(tmp_path, {}, pcap=capture)
    # libpcap hands net_pcap microseconds, so the sub-microsecond part is lost (documented).
    assert_same_as_plain_read(run, capture, ts_resolution_ns=1000)
    assert any(t % 1000 for t in (r.ts_ns for r in read_pcap_plainly(capture)))


@needs_dpdk
@pytest.mark.dpdk
def test_live_mode_returns_empty_batches_when_idle(tmp_path: Path, scapy_capture: Path) -> None:
    capture_config = DpdkConfig().with_pcap(scapy_capture)
    run = run_child(
        tmp_path,
        {"vdevs": list(capture_config.vdevs), "port_name": capture_config.port_name, "stop_when_idle": False,
         "idle_polls": 5},
        max_calls=6,
    )  # fmt: skip
    assert "error" not in run.result, run.result.get("error")
    assert "ended" not in run.result
    sizes = [b["len"] for b in run.result["batches"]]
    assert sizes == [1500, 0, 0, 0, 0, 0]
    assert [b["first_index"] for b in run.result["batches"][1:]] == [1500] * 5


@needs_dpdk
@pytest.mark.dpdk
def test_host_clock_timestamps_when_asked(tmp_path: Path, scapy_capture: Path) -> None:
    import time

    before = time.time_ns()
    run = run_child(tmp_path, {"timestamps": "host"}, pcap=scapy_capture)
    after = time.time_ns()
    assert len(run.packets) == 1500
    assert all(before <= t <= after for t in run.stamps)
    assert run.stamps == sorted(run.stamps)
    assert run.result["stats_closed"]["host_timestamps"] == 1500


@needs_dpdk
@pytest.mark.dpdk
def test_vdev_with_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-capture.pcap"
    run = run_child(tmp_path, {"vdevs": [f"net_pcap0,rx_pcap={missing}"], "port_name": "net_pcap0"})
    error = run.result["error"]
    assert error.startswith("SourceUnavailableError: DPDK port 'net_pcap0'")
    assert "does not exist" in error
    assert f"Couldn't open {missing}" in error
    assert "No such file or directory" in error
    assert run.stdout == ""


@needs_dpdk
@pytest.mark.dpdk
def test_bad_eal_argument_is_a_clear_error(tmp_path: Path, scapy_capture: Path) -> None:
    prefix = f"shrike-test-{uuid.uuid4().hex[:12]}"
    run = run_child(
        tmp_path,
        {"eal_args": [*child_eal_args(prefix), "--no-such-eal-option"]},
        pcap=scapy_capture,
    )
    error = run.result["error"]
    assert error.startswith("SourceUnavailableError: DPDK EAL failed to start")
    assert "unrecognized option '--no-such-eal-option'" in error
    assert "Usage:" not in error
    # EAL's usage text must not leak onto stdout, where Shrike writes results.
    assert run.stdout == ""


@needs_dpdk
@pytest.mark.dpdk
def test_eal_starts_once_per_process(tmp_path: Path, scapy_capture: Path) -> None:
    other = tmp_path / "other.pcap"
    shutil.copy(scapy_capture, other)
    run = run_child(
        tmp_path,
        {},
        pcap=scapy_capture,
        second_open=[
            {"config": {}, "pcap": str(other)},
            {"config": {}, "pcap": str(scapy_capture)},
        ],
    )
    assert "error" not in run.result
    different, same_port_again = run.result["second"]
    assert different.startswith(
        "SourceUnavailableError: DPDK EAL can be initialised only once per process"
    )
    assert str(other) in different
    assert "same eal_args and vdevs" in different
    assert same_port_again.startswith(
        "SourceUnavailableError: DPDK port 'net_pcap_shrike_replay' was already opened"
    )


@needs_dpdk
@pytest.mark.dpdk
def test_too_many_rx_queues_names_the_limit(tmp_path: Path, scapy_capture: Path) -> None:
    run = run_child(tmp_path, {"rx_queues": 2}, pcap=scapy_capture)
    assert "rx queue count check failed" in run.result["error"]
    assert "the port has 1 rx queue(s)" in run.result["error"]


# --- without DPDK -------------------------------------------------------------------------


def test_missing_libdpdk_says_what_to_install(scapy_capture: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError) as caught:
        DpdkSource.from_config(pcap=scapy_capture, pkg_name="libdpdk-shrike-test-absent")
    message = str(caught.value)
    assert "pkg-config --modversion libdpdk-shrike-test-absent" in message
    assert "apt-get install dpdk-dev pkg-config" in message


def test_missing_libdpdk_via_environment(
    scapy_capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHRIKE_DPDK_PKG", "libdpdk-shrike-test-absent")
    with pytest.raises(SourceUnavailableError, match="apt-get install dpdk-dev pkg-config"):
        DpdkSource.from_config(pcap=scapy_capture)


@needs_dpdk
def test_failed_build_quotes_the_compiler(tmp_path: Path) -> None:
    from dpdk_io import dpdk_build

    broken = tmp_path / "dpdk_shim.c"
    broken.write_text("int shrike_eal_init(int argc, char **argv) { return undeclared_thing; }\n")
    with pytest.raises(SourceUnavailableError) as caught:
        dpdk_build.build_shim(cache_root=tmp_path / "cache", shim_source=broken)
    assert "undeclared_thing" in str(caught.value)
    assert "failed; compiler output" in str(caught.value)


@needs_dpdk
def test_build_is_cached_by_source(tmp_path: Path) -> None:
    from dpdk_io import dpdk_build

    first = dpdk_build.build_shim(cache_root=tmp_path)
    mtime = first.stat().st_mtime_ns
    assert dpdk_build.build_shim(cache_root=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    assert first.parent.parent == tmp_path


# --- configuration ------------------------------------------------------------------------


def test_shipped_config_is_the_defaults() -> None:
    assert load_dpdk_config(REPO / "config" / "dpdk.yaml") == DpdkConfig()


def test_config_values_are_read(tmp_path: Path) -> None:
    path = tmp_path / "dpdk.yaml"
    path.write_text(
        "port_id: 3\nburst_size: 128\nvdevs: ['net_null0']\nstop_when_idle: true\ntimestamps: host\n"
    )
    config = load_dpdk_config(path)
    assert (config.port_id, config.burst_size, config.vdevs) == (3, 128, ("net_null0",))
    assert config.stop_when_idle is True and config.timestamps == "host"
    assert config.eal_argv()[-1] == "--vdev=net_null0"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("burst_sise: 32\n", "burst_sise", "unknown setting"),
        ("burst_size: 0\n", "burst_size", "between 1 and 1024"),
        ("burst_size: 2000\n", "burst_size", "between 1 and 1024"),
        ("port_id: '0'\n", "port_id", "must be an integer"),
        ("nb_mbufs: 1000\n", "nb_mbufs", "too few"),
        ("cache_size: 600\n", "cache_size", "between 0 and 512"),
        ("timestamps: nic\n", "timestamps", "one of auto, host"),
        ("stop_when_idle: maybe\n", "stop_when_idle", "true or false"),
        ("eal_args: --no-huge\n", "eal_args", "list of strings"),
        ("eal_args: ['--vdev=net_pcap0,rx_pcap=x']\n", "eal_args", "under `vdevs`"),
        ("batch_bytes: 1000\n", "batch_bytes", "between"),
        ("- just a list\n", "<top level>", "mapping"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = tmp_path / "dpdk.yaml"
    path.write_text(text)
    with pytest.raises(DpdkConfigError) as caught:
        load_dpdk_config(path)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert fragment in str(caught.value)


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = tmp_path / "dpdk.yaml"
    path.write_text("port_id: 0\nvdevs: [unclosed\n")
    with pytest.raises(DpdkConfigError, match=rf"^{path}:3:1: <yaml>: invalid YAML"):
        load_dpdk_config(path)


def test_pcap_convenience_adds_the_vdev_and_selects_it(scapy_capture: Path) -> None:
    config = DpdkConfig().with_pcap(scapy_capture)
    assert config.vdevs == (f"net_pcap_shrike_replay,rx_pcap={scapy_capture.resolve()}",)
    assert config.port_name == "net_pcap_shrike_replay"
    assert config.stop_when_idle is True
    argv = config.eal_argv()
    assert argv[-1] == f"--vdev={config.vdevs[0]}"
    assert f"--file-prefix=shrike-{os.getpid()}" in argv
    assert "-l" in argv


def test_pcap_convenience_refuses_what_net_pcap_cannot_replay(tmp_path: Path) -> None:
    raw_ip = tmp_path / "raw.pcap"
    write_pcap(raw_ip, [(bytes(40), 0)], linktype=101)
    with pytest.raises(DpdkConfigError, match="link type 101 is not Ethernet"):
        DpdkConfig().with_pcap(raw_ip)
    with pytest.raises(DpdkConfigError, match="cannot read capture"):
        DpdkConfig().with_pcap(tmp_path / "absent.pcap")
    text = tmp_path / "notes.pcap"
    text.write_text("hello, not a capture at all")
    with pytest.raises(DpdkConfigError, match="not a pcap or pcapng file"):
        DpdkConfig().with_pcap(text)
    comma = tmp_path / "a,b.pcap"
    write_pcap(comma, [(bytes(60), 0)])
    with pytest.raises(DpdkConfigError, match="cannot carry ','"):
        DpdkConfig().with_pcap(comma)


@needs_dpdk
def test_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    from dpdk_io import dpdk_build

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(
        SourceUnavailableError, match=r"cannot write the shim cache .*XDG_CACHE_HOME"
    ):
        dpdk_build.build_shim(cache_root=blocker / "shrike")
