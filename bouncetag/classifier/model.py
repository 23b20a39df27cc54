"""The genre head: a small torch MLP over concatenated features; self-describing checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bouncetag.classifier.results import GenrePrediction
from bouncetag.errors import ModelMissingError

if TYPE_CHECKING:
    import torch

HEAD_FILE = "head.pt"
META_FILE = "model.json"
WORD2VEC_FILE = "word2vec.kv"
BERT_DIR = "bert"  # a fine-tuned MiniLM (save_pretrained) when trained with --finetune-bert
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the head: which features, in which order, and which labels."""

    feature_names: tuple[str, ...]
    feature_dims: tuple[int, ...]
    labels: tuple[str, ...]
    hidden: int = 128
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if len(self.feature_names) != len(self.feature_dims):
            raise ValueError("feature_names and feature_dims must have the same length")
        if not self.feature_names:
            raise ValueError("a genre head needs at least one feature")
        if len(self.labels) < 2:
            raise ValueError("a genre head needs at least two labels")

    @property
    def input_dim(self) -> int:
        return int(sum(self.feature_dims))

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "feature_dims": [int(d) for d in self.feature_dims],
            "labels": list(self.labels),
            "hidden": self.hidden,
            "dropout": self.dropout,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ModelConfig:
        return cls(
            feature_names=tuple(obj["feature_names"]),
            feature_dims=tuple(int(d) for d in obj["feature_dims"]),
            labels=tuple(obj["labels"]),
            hidden=int(obj.get("hidden", 128)),
            dropout=float(obj.get("dropout", 0.3)),
        )


@dataclass(frozen=True)
class ModelMeta:
    """What a checkpoint says about itself, readable without torch (model.json)."""

    version: str
    config: ModelConfig
    created_at: float
    data_summary: dict[str, Any] = field(default_factory=dict)  # counts, sources, fingerprint
    metrics: dict[str, Any] = field(default_factory=dict)
    extractor_versions: dict[str, str] = field(default_factory=dict)
    has_word2vec: bool = False
    # Set when trained with --finetune-bert: the "bert" features come from <model_dir>/bert,
    # not the stock MiniLM (sha256 of its weights, base folder, per-epoch history).
    finetuned_bert: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["config"] = self.config.to_dict()
        out["format_version"] = FORMAT_VERSION
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ModelMeta:
        return cls(
            version=str(obj["version"]),
            config=ModelConfig.from_dict(obj["config"]),
            created_at=float(obj.get("created_at", 0.0)),
            data_summary=dict(obj.get("data_summary", {})),
            metrics=dict(obj.get("metrics", {})),
            extractor_versions=dict(obj.get("extractor_versions", {})),
            has_word2vec=bool(obj.get("has_word2vec", False)),
            finetuned_bert=dict(obj["finetuned_bert"]) if obj.get("finetuned_bert") else None,
        )


def read_meta(model_dir: Path) -> ModelMeta:
    """Read a model folder's model.json (cheap: no torch).

    Raises:
        ModelMissingError: there is no readable model in the folder.
    """
    meta_file = Path(model_dir) / META_FILE
    try:
        return ModelMeta.from_dict(json.loads(meta_file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelMissingError(
            "no genre model here; run `bouncetag train`", model_dir
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelMissingError(f"unreadable genre model ({exc})", model_dir) from None


_HEAD_CLASS: type | None = None


def _head_class() -> type:
    """Define GenreHead on first use, so importing this module does not import torch."""
    global _HEAD_CLASS
    if _HEAD_CLASS is not None:
        return _HEAD_CLASS
    import torch
    from torch import nn

    class GenreHead(nn.Module):
        """Standardise -> Linear -> GELU -> Dropout -> Linear: logits over the labels."""

        def __init__(self, config: ModelConfig) -> None:
            super().__init__()
            self.config = config
            dim = config.input_dim
            self.register_buffer("mean", torch.zeros(dim))
            self.register_buffer("std", torch.ones(dim))
            self.net = nn.Sequential(
                nn.Linear(dim, config.hidden),
                nn.GELU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, len(config.labels)),
            )

        def set_standardisation(self, x: torch.Tensor) -> None:
            """Fit the input mean/std buffers on training features."""
            mean = x.mean(dim=0)
            std = x.std(dim=0, unbiased=False)
            # Constant features (e.g. w2v zeros) must not blow up: divide by 1 instead.
            std = torch.where(std < 1e-6, torch.ones_like(std), std)
            self.mean.copy_(mean)
            self.std.copy_(std)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net((x - self.mean) / self.std)

    _HEAD_CLASS = GenreHead
    return GenreHead


def __getattr__(name: str) -> Any:  # PEP 562: `from bouncetag.classifier.model import GenreHead`
    if name == "GenreHead":
        return _head_class()
    raise AttributeError(name)


def build_head(config: ModelConfig, seed: int | None = None) -> Any:
    """A fresh, untrained GenreHead for `config` (seeded when `seed` is given)."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    return _head_class()(config)


def concat_features(
    features: dict[str, np.ndarray], names: tuple[str, ...], dims: tuple[int, ...]
) -> np.ndarray:
    """Concatenate per-extractor vectors in the model's order, checking each dimension.

    Raises:
        ValueError: a feature is missing or has the wrong size.
    """
    parts = []
    for name, dim in zip(names, dims, strict=True):
        if name not in features:
            raise ValueError(f"feature {name!r} missing (the model needs {', '.join(names)})")
        vec = np.asarray(features[name], dtype=np.float32).reshape(-1)
        if vec.shape[0] != dim:
            raise ValueError(f"feature {name!r} has {vec.shape[0]} dims, the model expects {dim}")
        parts.append(vec)
    out = np.concatenate(parts)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def save_model(
    model_dir: Path,
    head: Any,
    meta: ModelMeta,
    word2vec: Any | None = None,
    bert_dir: Path | None = None,
) -> Path:
    """Write a model folder: head.pt (weights), model.json (config, labels, data, metrics),
    word2vec.kv beside them when a Word2Vec model was trained, and bert/ when a fine-tuned
    BERT folder is given (moved in; `meta.finetuned_bert` must describe it).

    Returns:
        The model folder.
    """
    import torch

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if bert_dir is not None:
        if not meta.finetuned_bert:
            raise ValueError("a fine-tuned BERT folder needs meta.finetuned_bert")
        shutil.move(str(bert_dir), str(model_dir / BERT_DIR))
    if word2vec is not None:
        word2vec.save(str(model_dir / WORD2VEC_FILE))
        meta = dataclasses.replace(meta, has_word2vec=True)
    state = {k: v.detach().cpu() for k, v in head.state_dict().items()}
    torch.save({"state_dict": state, "meta": meta.to_dict()}, model_dir / HEAD_FILE)
    tmp = model_dir / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(model_dir / META_FILE)
    return model_dir


class GenreModel:
    """A trained genre head loaded for inference; thread-safe for predict()."""

    def __init__(self, model_dir: Path, meta: ModelMeta, head: Any) -> None:
        self.model_dir = Path(model_dir)
        self.meta = meta
        self._head = head

    @property
    def version(self) -> str:
        return self.meta.version

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.meta.config.feature_names

    @property
    def feature_dims(self) -> tuple[int, ...]:
        return self.meta.config.feature_dims

    @property
    def labels(self) -> tuple[str, ...]:
        return self.meta.config.labels

    @property
    def word2vec_path(self) -> Path | None:
        path = self.model_dir / WORD2VEC_FILE
        return path if self.meta.has_word2vec and path.exists() else None

    @property
    def bert_path(self) -> Path | None:
        """The fine-tuned BERT folder its "bert" features need, or None for the stock MiniLM.

        A model trained with --finetune-bert always names its folder, even when it has gone
        missing: loading it then fails clearly instead of silently using the stock encoder.
        """
        return self.model_dir / BERT_DIR if self.meta.finetuned_bert else None

    @classmethod
    def load(cls, model_dir: Path | str) -> GenreModel:
        """Load a model folder written by `save_model`.

        Raises:
            ModelMissingError: the folder, its head.pt or model.json is missing or unreadable.
        """
        import torch

        model_dir = Path(model_dir)
        if not (model_dir / HEAD_FILE).exists():
            raise ModelMissingError("no genre model here; run `bouncetag train`", model_dir)
        try:
            blob = torch.load(model_dir / HEAD_FILE, map_location="cpu", weights_only=True)
            meta = ModelMeta.from_dict(blob["meta"])
            head = _head_class()(meta.config)
            head.load_state_dict(blob["state_dict"])
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
            raise ModelMissingError(f"unreadable genre model ({exc})", model_dir) from None
        head.eval()
        return cls(model_dir, meta, head)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Class probabilities for a (n, input_dim) matrix of concatenated features."""
        import torch

        with torch.inference_mode():
            logits = self._head(torch.as_tensor(np.asarray(matrix, dtype=np.float32)))
            return torch.softmax(logits, dim=-1).numpy()

    def predict(self, features: dict[str, np.ndarray], top_k: int = 3) -> GenrePrediction:
        """Top-k genres for one file's features.

        Args:
            features: extractor name -> vector; must hold every name in `feature_names`.
            top_k: how many genres to return.

        Returns:
            The best `top_k` (label, probability) pairs and this model's version.

        Raises:
            ValueError: a feature is missing or has the wrong size.
        """
        row = concat_features(features, self.feature_names, self.feature_dims)
        probs = self.probabilities(row[None, :])[0]
        order = np.argsort(-probs)[: max(1, min(top_k, len(self.labels)))]
        top = tuple((self.labels[i], float(probs[i])) for i in order)
        if not all(math.isfinite(p) for _, p in top):  # pragma: no cover - defensive
            raise ValueError("genre head produced non-finite probabilities")
        return GenrePrediction(top=top, model_version=self.version)
