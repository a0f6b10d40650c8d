"""Anomaly models: training, the versioned skops file, and loading with feature checks.

A model file holds, in skops format (never pickle): the scikit-learn pipeline
(standard scaling, then the detector: IsolationForest by default, or a
one-class SVM), the feature list it was trained on, the transform, a
calibration that maps raw scores to 0..1, a version and a training summary.
Loading refuses a file whose types are not the expected scikit-learn ones and
a model whose features differ from what the caller scores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from engine.anomaly.features import FeatureTable, signed_log1p

FORMAT = "shrike-anomaly-model"
FORMAT_VERSION = 1
MODEL_KINDS: tuple[str, ...] = ("isolation_forest", "ocsvm")
TRANSFORM = "signed_log1p"

# the only non-builtin types a model file may contain beyond skops' own defaults
_TRUSTED_TYPES = frozenset({"sklearn.tree._tree.Tree"})


class ModelError(ValueError):
    """A model file that cannot be used, naming the file."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class TrainOptions:
    kind: str = "isolation_forest"
    n_estimators: int = 200
    max_samples: int = 512
    nu: float = 0.02  # one-class SVM: share of training rows allowed outside
    max_train_rows: int = 20_000  # one-class SVM trains on a sample this size
    contamination: float = 0.01  # training share above the decision threshold
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; expected {', '.join(MODEL_KINDS)}")
        if not 0 < self.contamination < 0.5:
            raise ValueError("contamination must be between 0 and 0.5")


@dataclass(slots=True)
class AnomalyModel:
    """A trained pipeline with everything needed to score and explain."""

    kind: str
    features: tuple[str, ...]
    pipeline: Pipeline
    threshold: float  # raw score at the decision point
    scale: float  # raw-score spread used by the logistic calibration
    version: str
    summary: dict[str, Any] = field(default_factory=dict)

    def raw_scores(self, table: FeatureTable) -> np.ndarray:
        """Higher is more anomalous (the negated scikit-learn score)."""
        if table.names != self.features:
            raise ValueError("feature table columns differ from the model's features")
        x = signed_log1p(table.values)
        if self.kind == "isolation_forest":
            return -np.asarray(self.pipeline.score_samples(x))
        return -np.asarray(self.pipeline.decision_function(x))

    def scores(self, table: FeatureTable) -> np.ndarray:
        """Scores in 0..1; 0.5 is the decision threshold."""
        z = (self.raw_scores(table) - self.threshold) / self.scale
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def zscores(self, table: FeatureTable) -> np.ndarray:
        """Per-feature distance from training in standard deviations (after the transform)."""
        scaler: StandardScaler = self.pipeline.named_steps["scale"]
        return np.asarray(scaler.transform(signed_log1p(table.values)))


def train_model(
    table: FeatureTable, options: TrainOptions | None = None, *, sources: list[str] | None = None
) -> AnomalyModel:
    """Fit a model on rows taken as normal."""
    opts = options or TrainOptions()
    if len(table) < 10:
        raise ValueError(f"need at least 10 training rows, got {len(table)}")
    x = signed_log1p(table.values)
    rng = np.random.default_rng(opts.seed)
    if opts.kind == "isolation_forest":
        detector: Any = IsolationForest(
            n_estimators=opts.n_estimators,
            max_samples=min(opts.max_samples, len(x)),
            random_state=opts.seed,
        )
        fit_x = x
    else:
        detector = OneClassSVM(kernel="rbf", nu=opts.nu, gamma="scale")
        fit_x = (
            x[rng.choice(len(x), opts.max_train_rows, replace=False)]
            if len(x) > opts.max_train_rows
            else x
        )
    pipeline = Pipeline([("scale", StandardScaler()), ("model", detector)])
    pipeline.fit(fit_x)
    model = AnomalyModel(opts.kind, table.names, pipeline, 0.0, 1.0, "")
    raw = model.raw_scores(table)
    threshold = float(np.quantile(raw, 1.0 - opts.contamination))
    spread = float(np.quantile(raw, 0.99) - np.quantile(raw, 0.5))
    model.threshold = threshold
    model.scale = spread / 4.0 if spread > 0 else 1.0
    model.summary = {
        "rows": len(table),
        "fit_rows": len(fit_x),
        "sources": list(sources or []),
        "options": {
            "kind": opts.kind,
            "n_estimators": opts.n_estimators,
            "max_samples": opts.max_samples,
            "nu": opts.nu,
            "contamination": opts.contamination,
            "seed": opts.seed,
        },
        "raw_score_quantiles": {
            q: float(np.quantile(raw, float(q))) for q in ("0.5", "0.9", "0.99")
        },
        "sklearn": sklearn.__version__,
        "transform": TRANSFORM,
    }
    digest = hashlib.sha256(
        json.dumps([opts.kind, list(table.names), model.summary], sort_keys=True).encode()
        + x[: min(len(x), 1000)].tobytes()
    ).hexdigest()[:12]
    model.version = f"{opts.kind}-{digest}"
    return model


def save_model(model: AnomalyModel, path: str | Path) -> None:
    import skops.io as sio

    sio.dump(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": model.kind,
            "features": list(model.features),
            "transform": TRANSFORM,
            "threshold": model.threshold,
            "scale": model.scale,
            "version": model.version,
            "summary_json": json.dumps(model.summary, sort_keys=True),
            "pipeline": model.pipeline,
        },
        str(path),
        compression=8,  # zipfile.ZIP_DEFLATED
    )


def load_model(path: str | Path, expected_features: tuple[str, ...] | None = None) -> AnomalyModel:
    """Load a model file; refuse unknown types, other formats, or features other than expected."""
    import skops.io as sio

    p = str(path)
    try:
        untrusted = set(sio.get_untrusted_types(file=p))
    except FileNotFoundError:
        raise ModelError(p, "no such model file") from None
    except Exception as exc:  # a zip that is not a skops file, or not a zip at all
        raise ModelError(p, f"not a skops model file ({exc})") from None
    unknown = untrusted - _TRUSTED_TYPES
    if unknown:
        raise ModelError(p, f"refusing to load types {', '.join(sorted(unknown))}")
    try:
        obj = sio.load(p, trusted=sorted(untrusted))
    except Exception as exc:
        raise ModelError(p, f"cannot read model ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ModelError(p, "not a Shrike anomaly model")
    if obj.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            p, f"model format {obj.get('format_version')} (this Shrike reads {FORMAT_VERSION})"
        )
    if obj.get("transform") != TRANSFORM or obj.get("kind") not in MODEL_KINDS:
        raise ModelError(p, "unknown transform or model kind")
    features = tuple(obj["features"])
    if expected_features is not None and features != tuple(expected_features):
        missing = [f for f in expected_features if f not in features]
        extra = [f for f in features if f not in expected_features]
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:5])}" if missing else "",
                f"unexpected {', '.join(extra[:5])}" if extra else "",
                "same names in another order" if not missing and not extra else "",
            )
            if part
        )
        raise ModelError(p, f"model features do not match the features scored ({detail})")
    pipeline = obj["pipeline"]
    if not isinstance(pipeline, Pipeline):
        raise ModelError(p, "model pipeline is not a scikit-learn Pipeline")
    return AnomalyModel(
        kind=str(obj["kind"]),
        features=features,
        pipeline=pipeline,
        threshold=float(obj["threshold"]),
        scale=float(obj["scale"]),
        version=str(obj["version"]),
        summary=json.loads(obj["summary_json"]),
    )
