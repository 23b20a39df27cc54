"""Fine-tune MiniLM BERT on the training transcripts (`bouncetag train --finetune-bert`)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bouncetag.errors import ModelMissingError, TrainingError

if TYPE_CHECKING:
    from rich.console import Console

# Weight files save_pretrained writes (newer transformers: safetensors; older: a torch pickle).
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class FinetuneSettings:
    """How to fine-tune: few epochs, a small learning rate, seeded; CPU only."""

    epochs: int = 3
    learning_rate: float = 3e-5
    batch_size: int = 16
    max_length: int = 128
    seed: int = 0
    weight_decay: float = 0.01


@dataclass(frozen=True)
class FinetuneResult:
    """A fine-tuned encoder folder (config, weights, tokenizer) and how it was chosen."""

    path: Path
    sha256: str  # of the weights: the fine-tuned features' identity
    base: str  # the folder it started from
    labels: tuple[str, ...]
    n_train: int
    n_valid: int
    epochs_run: int
    best_epoch: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_meta(self) -> dict[str, Any]:
        """What model.json records about the fine-tuned BERT (no absolute paths but the base)."""
        return {
            "finetuned": True, "sha256": self.sha256, "base": self.base,
            "labels": list(self.labels), "n_train": self.n_train, "n_valid": self.n_valid,
            "epochs_run": self.epochs_run, "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 1), "history": self.history,
        }


def weights_sha256(folder: Path) -> str:
    """SHA-256 of a saved encoder's weights file.

    Raises:
        TrainingError: the folder holds no weights file.
    """
    for name in _WEIGHT_FILES:
        path = Path(folder) / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()
    raise TrainingError(f"no BERT weights in {folder}")


def _load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True)
    return tokenizer, model


def _pool(model: Any, batch: dict[str, Any]) -> Any:
    """Mean over real tokens, exactly as BertEmbedder does at analysis time."""
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def embed_texts(
    path: Path, texts: list[str], max_length: int, batch_size: int = 32
) -> np.ndarray:
    """Mean-pooled embeddings of `texts` with the encoder in `path`; zeros for empty texts.

    Returns:
        (len(texts), hidden) float32, the same vectors BertEmbedder.embed gives one by one.

    Raises:
        ModelMissingError: `path` holds no saved BERT model.
    """
    import torch

    if not (Path(path) / "config.json").is_file():
        raise ModelMissingError(f"no BERT model at {path} (a fine-tuned model's bert/ folder?)")
    tokenizer, model = _load(path)
    model.eval()
    dim = int(model.config.hidden_size)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    todo = [i for i, t in enumerate(texts) if t.strip()]
    with torch.inference_mode():
        for start in range(0, len(todo), batch_size):
            idx = todo[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx], truncation=True, max_length=max_length,
                padding=True, return_tensors="pt",
            )
            out[idx] = _pool(model, batch).numpy().astype(np.float32)
    return out


def _macro_f1(truth: list[int], pred: list[int], n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = sum(t == c and p == c for t, p in zip(truth, pred, strict=True))
        fp = sum(t != c and p == c for t, p in zip(truth, pred, strict=True))
        fn = sum(t == c and p != c for t, p in zip(truth, pred, strict=True))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def finetune_bert(
    base: Path,
    out_dir: Path,
    train: list[tuple[str, str]],
    valid: list[tuple[str, str]],
    settings: FinetuneSettings,
    console: Console | None = None,
) -> FinetuneResult:
    """Fine-tune the encoder in `base` with a linear layer on its mean-pooled output.

    Args:
        base: a BertModel folder (the packaged MiniLM, or text.bert_model).
        out_dir: where the fine-tuned encoder and tokenizer are saved (save_pretrained).
        train: (transcript, genre) pairs to learn from; only items that have words.
        valid: (transcript, genre) pairs to pick the best epoch on (may be empty: last epoch).
        settings: epochs, learning rate, batch size, token limit, seed.
        console: where the rich progress bar goes (None: quiet).

    Returns:
        The saved folder, its weights hash and the per-epoch history.

    Raises:
        TrainingError: fewer than two genres have transcripts to learn from.
    """
    import torch

    started = time.perf_counter()
    labels = tuple(sorted({genre for _text, genre in train}))
    if len(labels) < 2:
        raise TrainingError(
            "--finetune-bert needs transcripts in at least two genres; found "
            f"{len(labels)} ({', '.join(labels) or 'no vocal tracks'}). Label more vocal "
            "bounces, or train without --finetune-bert"
        )
    index = {g: i for i, g in enumerate(labels)}
    valid = [(t, g) for t, g in valid if g in index]  # a genre with no training text: unscorable
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    tokenizer, encoder = _load(base)
    classifier = torch.nn.Linear(int(encoder.config.hidden_size), len(labels))
    counts = np.bincount([index[g] for _t, g in train], minlength=len(labels)).astype(np.float64)
    weights = len(train) / (len(labels) * np.maximum(counts, 1.0))
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32))
    params = list(encoder.parameters()) + list(classifier.parameters())
    optimiser = torch.optim.AdamW(
        params, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    train_y = torch.as_tensor([index[g] for _t, g in train], dtype=torch.long)

    def encode(texts: list[str]) -> dict[str, Any]:
        return tokenizer(texts, truncation=True, max_length=settings.max_length,
                         padding=True, return_tensors="pt")

    def evaluate() -> tuple[float, float]:
        encoder.eval()
        preds: list[int] = []
        loss_sum = 0.0
        with torch.inference_mode():
            for start in range(0, len(valid), 32):
                chunk = valid[start : start + 32]
                logits = classifier(_pool(encoder, encode([t for t, _g in chunk])))
                y = torch.as_tensor([index[g] for _t, g in chunk], dtype=torch.long)
                loss_sum += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
                preds += logits.argmax(dim=-1).tolist()
        truth = [index[g] for _t, g in valid]
        return _macro_f1(truth, preds, len(labels)), loss_sum / max(1, len(valid))

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    steps_per_epoch = (len(train) + settings.batch_size - 1) // settings.batch_size
    progress = Progress(
        TextColumn("fine-tuning BERT"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
        console=console, transient=False, disable=console is None,
    )
    history: list[dict[str, float]] = []
    best: tuple[float, float] | None = None  # (valid macro-F1, -valid loss): higher is better
    best_state: dict[str, Any] | None = None
    best_epoch = 0
    with progress:
        bar = progress.add_task("bert", total=settings.epochs * steps_per_epoch, note="")
        for epoch in range(1, settings.epochs + 1):
            encoder.train()
            classifier.train()
            order = torch.randperm(len(train), generator=generator).tolist()
            loss_total = 0.0
            for start in range(0, len(order), settings.batch_size):
                idx = order[start : start + settings.batch_size]
                batch = encode([train[i][0] for i in idx])
                loss = loss_fn(classifier(_pool(encoder, batch)), train_y[idx])
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimiser.step()
                loss_total += float(loss.detach()) * len(idx)
                progress.advance(bar)
            row = {"epoch": epoch, "train_loss": round(loss_total / len(train), 4)}
            if valid:
                f1, vloss = evaluate()
                row.update(valid_macro_f1=round(f1, 4), valid_loss=round(vloss, 4))
                if best is None or (f1, -vloss) > best:
                    best, best_epoch = (f1, -vloss), epoch
                    # Keep the best epoch's weights in memory (MiniLM is ~90 MB).
                    best_state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
                progress.update(bar, note=f"epoch {epoch}: valid macro-F1 {f1:.3f}")
            else:
                best_epoch = epoch
                progress.update(bar, note=f"epoch {epoch}: train loss {row['train_loss']:.3f}")
            history.append(row)
    if best_state is not None:
        encoder.load_state_dict(best_state)
    encoder.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return FinetuneResult(
        path=out_dir, sha256=weights_sha256(out_dir), base=str(base), labels=labels,
        n_train=len(train), n_valid=len(valid), epochs_run=len(history), best_epoch=best_epoch,
        seconds=time.perf_counter() - started, history=history,
    )
