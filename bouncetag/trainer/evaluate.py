"""Honest figures for a genre model: accuracy, macro-F1, confusion matrix, per-genre scores."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class GenreScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class SplitReport:
    """Figures for one split; `labels` orders the rows (true) and columns (predicted)."""

    split: str
    n: int
    accuracy: float
    macro_f1: float
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    per_genre: dict[str, GenreScore]


@dataclass(frozen=True)
class AblationRow:
    features: str  # the feature set's name, e.g. "audio"
    extractors: tuple[str, ...]
    valid_accuracy: float
    valid_macro_f1: float
    test_accuracy: float | None = None
    test_macro_f1: float | None = None


@dataclass(frozen=True)
class TrainReport:
    """Everything one training run reports; saved as report.json beside the model."""

    version: str
    features: tuple[str, ...]
    splits: dict[str, SplitReport]
    data_summary: dict[str, Any]
    ablation: tuple[AblationRow, ...] = ()
    warnings: tuple[str, ...] = ()
    promotion: dict[str, Any] = field(default_factory=dict)
    split_note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def score_split(
    split: str, y_true: list[str], y_pred: list[str], labels: tuple[str, ...] = ()
) -> SplitReport:
    """Accuracy, macro-F1 (over every genre that is true or predicted), confusion, per genre.

    Args:
        split: the split's name for the report.
        y_true: true genres.
        y_pred: predicted genres, same length.
        labels: genres to show first (the model's labels); others found in the data are added.

    Returns:
        The split's figures; an empty split gives zeros.
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    order = list(labels)
    for g in [*y_true, *y_pred]:
        if g not in order:
            order.append(g)
    index = {g: i for i, g in enumerate(order)}
    matrix = np.zeros((len(order), len(order)), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[index[t], index[p]] += 1
    per_genre: dict[str, GenreScore] = {}
    f1s = []
    present = set(y_true) | set(y_pred)
    for g in order:
        i = index[g]
        tp = int(matrix[i, i])
        predicted, actual = int(matrix[:, i].sum()), int(matrix[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_genre[g] = GenreScore(round(precision, 4), round(recall, 4), round(f1, 4), actual)
        if g in present:
            f1s.append(f1)
    n = len(y_true)
    accuracy = float(np.trace(matrix) / n) if n else 0.0
    return SplitReport(
        split=split, n=n, accuracy=round(accuracy, 4),
        macro_f1=round(float(np.mean(f1s)), 4) if f1s else 0.0,
        labels=tuple(order), confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        per_genre=per_genre,
    )


def render_report(report: TrainReport, console: Console) -> None:
    """Print the report as rich tables: per split, confusion matrices, per genre, ablation."""
    from rich.table import Table

    summary = Table(title=f"genre model {report.version}: {', '.join(report.features)}")
    for col in ("split", "items", "accuracy", "macro-F1"):
        summary.add_column(col, justify="right" if col != "split" else "left")
    for name, s in report.splits.items():
        summary.add_row(name, str(s.n), f"{s.accuracy:.3f}", f"{s.macro_f1:.3f}")
    console.print(summary)
    if report.split_note:
        console.print(f"[dim]{report.split_note}[/]")
    for name, s in report.splits.items():
        if name == "train" or not s.n:
            continue
        cm = Table(title=f"confusion matrix ({name}): rows true, columns predicted")
        cm.add_column("true \\ pred")
        for g in s.labels:
            cm.add_column(g[:8], justify="right")
        for g, row in zip(s.labels, s.confusion, strict=True):
            if sum(row) or any(r[s.labels.index(g)] for r in s.confusion):
                cm.add_row(g, *[str(v) if v else "." for v in row])
        console.print(cm)
        pg = Table(title=f"per genre ({name})")
        for col in ("genre", "precision", "recall", "F1", "support"):
            pg.add_column(col, justify="left" if col == "genre" else "right")
        for g, sc in s.per_genre.items():
            pg.add_row(
                g, f"{sc.precision:.3f}", f"{sc.recall:.3f}", f"{sc.f1:.3f}", str(sc.support)
            )
        console.print(pg)
    if report.ablation:
        ab = Table(title="ablation (same split, head retrained per feature set)")
        for col in ("features", "extractors", "valid acc", "valid F1", "test acc", "test F1"):
            ab.add_column(col)
        for row in report.ablation:
            ab.add_row(
                row.features, ",".join(row.extractors), f"{row.valid_accuracy:.3f}",
                f"{row.valid_macro_f1:.3f}",
                "-" if row.test_accuracy is None else f"{row.test_accuracy:.3f}",
                "-" if row.test_macro_f1 is None else f"{row.test_macro_f1:.3f}",
            )
        console.print(ab)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def save_confusion_png(split: SplitReport, path: Path) -> Path | None:
    """Draw one split's confusion matrix as a PNG (None when matplotlib is not installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    matrix = np.array(split.confusion)
    size = max(4.0, 0.55 * len(split.labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(split.labels)), split.labels, rotation=45, ha="right")
        ax.set_yticks(range(len(split.labels)), split.labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{split.split}: accuracy {split.accuracy:.3f}, macro-F1 {split.macro_f1:.3f}")
        peak = matrix.max() if matrix.size else 0
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if matrix[i, j]:
                    colour = "white" if matrix[i, j] > peak / 2 else "black"
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def save_report(report: TrainReport, folder: Path) -> list[Path]:
    """Write report.json and one confusion_<split>.png per evaluated split into `folder`.

    Returns:
        The files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.json"]
    written[0].write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    for name, split in report.splits.items():
        if name == "train" or not split.n:
            continue
        png = save_confusion_png(split, folder / f"confusion_{name}.png")
        if png is not None:
            written.append(png)
    return written
