"""Scoring real flow records, the train/evaluate commands and the NSL-KDD reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.anomaly import Scorer, TrainOptions, flow_table
from engine.anomaly.nslkdd import NslKddError, categories, read_nslkdd, to_table
from engine.anomaly.training import capture_table, train_from_captures
from engine.cli import main
from engine.pipeline import iter_flow_records
from engine.sample import write_sample_pcap
from engine.sources import open_source

NSL_KDD = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nsl-kdd"


@pytest.fixture(scope="module")
def sample_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("anomaly") / "sample.pcap"
    write_sample_pcap(path)
    return path


@pytest.fixture(scope="module")
def upload_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:fe")
    pkts = []
    for k in range(600):
        p = (
            eth
            / IP(src="192.168.10.21", dst="203.0.113.200")
            / TCP(sport=40001, dport=8081, flags="PA", seq=1 + 1400 * k)
            / (b"z" * 1400)
        )
        p.time = 1_700_000_100.0 + k * 0.0005
        pkts.append(p)
    path = tmp_path_factory.mktemp("anomaly") / "upload.pcap"
    wrpcap(str(path), pkts)
    return path


def test_scorer_scores_every_flow_and_explains_outliers(
    sample_pcap: Path, upload_pcap: Path
) -> None:
    model = train_from_captures([sample_pcap], TrainOptions(n_estimators=100))
    scorer = Scorer(model)
    with open_source("pcap", str(upload_pcap)) as src:
        records = next(iter_flow_records(src))
    (score,) = scorer.score(records, all_flows=True)
    assert score.model == "isolation_forest" and score.threshold == 0.5
    assert score.flow.src_ip == "192.168.10.21" and score.flow.dst_port == 8081
    assert score.flow.community_id.startswith("1:")
    assert score.reasons and all("far above training" in r for r in score.reasons)
    with open_source("pcap", str(sample_pcap)) as src:
        normal = [
            r for batch in iter_flow_records(src) for r in scorer.score(batch, all_flows=True)
        ]
    assert len(normal) == len(capture_table(sample_pcap))
    assert np.mean([s.is_anomalous for s in normal]) < 0.1
    # the bulk upload ranks above nearly every flow the model learned from
    assert np.mean([s.score < score.score for s in normal]) > 0.9
    flagged = scorer.score(records)
    assert all(s.is_anomalous for s in flagged)


def test_shipped_model_scores_flow_records(sample_pcap: Path) -> None:
    scorer = Scorer.load()
    with open_source("pcap", str(sample_pcap)) as src:
        records = next(iter_flow_records(src))
    scores = scorer.score_array(records)
    assert scores.shape == (len(records),) and np.all((scores >= 0) & (scores <= 1))
    assert flow_table(records).values.shape == (len(records), len(scorer.model.features))


def test_train_and_evaluate_commands(
    tmp_path: Path, sample_pcap: Path, upload_pcap: Path, capsys
) -> None:
    model = tmp_path / "m.skops"
    assert main(["train", "--pcap", str(sample_pcap), "-o", str(model), "--trees", "50"]) == 0
    assert "isolation_forest" in capsys.readouterr().out
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import wrpcap

    arp_only = tmp_path / "arp.pcap"  # no flows: adds nothing to the evaluation
    wrpcap(
        str(arp_only),
        [Ether(src="02:00:00:00:00:aa", dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.1")],
    )
    out_dir = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--model",
            str(model),
            "--benign",
            str(sample_pcap),
            "--attack",
            str(upload_pcap),
            str(arp_only),
            "-o",
            str(out_dir),
        ]
    )
    printed = capsys.readouterr().out
    assert ": 1 attack," in printed
    assert code == 0 and "ROC AUC" in printed and "recall@1%FPR" in printed
    assert (out_dir / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (out_dir / "scores-isolation_forest.png").is_file()


def test_commands_report_bad_input(tmp_path: Path, capsys) -> None:
    assert (
        main(["train", "--pcap", str(tmp_path / "none.pcap"), "-o", str(tmp_path / "m.skops")]) == 1
    )
    assert "none.pcap" in capsys.readouterr().err
    bad = tmp_path / "bad.skops"
    bad.write_text("not a model")
    code = main(
        ["evaluate", "--model", str(bad), "--benign", "a", "--attack", "b", "-o", str(tmp_path)]
    )
    assert code == 1 and "bad.skops: not a skops model file" in capsys.readouterr().err
    assert main(["evaluate", "-o", str(tmp_path)]) == 2


def test_nslkdd_reader_locates_bad_lines(tmp_path: Path) -> None:
    good = "0,tcp,http,SF," + ",".join(["1"] * 37) + ",normal,20\n"
    path = tmp_path / "kdd.txt"
    path.write_text(good + good.replace("tcp,http,SF,1", "tcp,http,SF,x"))
    with pytest.raises(NslKddError, match=r"kdd\.txt:2: field src_bytes is not a number: 'x'"):
        read_nslkdd(path)
    path.write_text(good + "0,tcp\n")
    with pytest.raises(NslKddError, match=r"kdd\.txt:2: expected 42 or 43 fields, found 2"):
        read_nslkdd(path)
    path.write_text(good)
    data = read_nslkdd(path)
    table = to_table(data, categories(data))
    assert table.values.shape == (1, 38 + 3) and "service=http" in table.names


@pytest.mark.shared
def test_nslkdd_isolation_forest_auc() -> None:
    if not (NSL_KDD / "KDDTrain+.txt").is_file():
        pytest.skip(f"NSL-KDD absent: no KDDTrain+.txt under {NSL_KDD}")
    from engine.anomaly.evaluation import nslkdd_runs

    _, (run,) = nslkdd_runs(NSL_KDD, ["isolation_forest"])
    assert run.evaluation.roc_auc >= 0.93
