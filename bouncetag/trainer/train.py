"""Train the genre head on GTZAN plus user labels, report it, and promote it only if no worse."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bouncetag.errors import BounceTagError, TrainingError
from bouncetag.trainer.datasets import (
    LabelledItem,
    data_fingerprint,
    data_summary,
    few_example_warnings,
    load_gtzan,
    split_user_labels,
)
from bouncetag.trainer.evaluate import AblationRow, SplitReport, TrainReport, score_split

if TYPE_CHECKING:
    from rich.console import Console

    from bouncetag.classifier.model import ModelConfig
    from bouncetag.config import Config, TrainConfig
    from bouncetag.paths import AppPaths
    from bouncetag.store import Store
    from bouncetag.trainer.cache import FeatureCache

ABLATION_SETS = ("audio", "text", "all")
PROMOTION_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TrainOptions:
    """One training run's settings (the CLI flags over `[train]` in the config)."""

    gtzan: Path | None = None
    gtzan_split: str = "filtered"  # "filtered" (artist-filtered) | "random" (overstates accuracy)
    features: str = "all"
    report_test: bool = False
    force: bool = False
    epochs: int = 200
    patience: int = 20
    learning_rate: float = 1e-3
    hidden: int = 128
    dropout: float = 0.3
    seed: int = 0
    jobs: int | None = None  # feature worker processes; None = all cores
    ablation: bool = True
    finetune_bert: bool = False  # also fine-tune MiniLM on the training transcripts
    finetune_epochs: int = 3
    finetune_learning_rate: float = 3e-5
    finetune_batch_size: int = 16

    @classmethod
    def from_config(cls, train: TrainConfig, **overrides: Any) -> TrainOptions:
        """Options from the `[train]` config section; keyword overrides win when not None."""
        base = cls(
            gtzan=Path(train.gtzan).expanduser() if train.gtzan else None,
            features=train.features, epochs=train.epochs, patience=train.patience,
            learning_rate=train.learning_rate, hidden=train.hidden, dropout=train.dropout,
            seed=train.seed, finetune_bert=train.finetune_bert,
            finetune_epochs=train.finetune_epochs,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class TrainResult:
    """What a training run did: the new model, whether it became current, and why."""

    version: str
    model_dir: Path
    promoted: bool
    reason: str
    previous_version: str | None
    new_score: float  # macro-F1 on the held-out data
    previous_score: float | None  # the previous model's macro-F1 on the same data
    report: TrainReport
    fingerprint: str
    started_at: float
    finished_at: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    finetuned_bert: dict[str, Any] | None = None  # what --finetune-bert did (model.json's copy)


# ---- data ---------------------------------------------------------------------------------
def collect_items(
    store: Store, options: TrainOptions, warn: Callable[[str], None]
) -> list[LabelledItem]:
    """GTZAN (when given) plus the user's labels, each with its split.

    Raises:
        TrainingError: a bad GTZAN folder, or no data at all.
    """
    items: list[LabelledItem] = []
    if options.gtzan is not None:
        items += load_gtzan(options.gtzan, options.gtzan_split, options.seed, warn)
    items += split_user_labels((lab.content_hash, lab.path, lab.genre) for lab in store.labels())
    if not items:
        raise TrainingError(
            "no training data: label some bounces (`bouncetag label FILE... GENRE`) "
            "or pass --gtzan DIR"
        )
    return items


def current_fingerprint(store: Store, options: TrainOptions) -> str:
    """The data fingerprint training would see now (the scheduler compares it to the last run)."""
    return data_fingerprint(collect_items(store, options, lambda _m: None))


@dataclass
class _Matrix:
    items: list[LabelledItem]
    features: list[dict[str, np.ndarray]]


def _gather(
    cache: FeatureCache,
    items: list[LabelledItem],
    names: tuple[str, ...],
    options: TrainOptions,
    console: Console | None,
    warn: Callable[[str], None],
    word2vec: Any | None,
) -> _Matrix:
    """Cached features for every item that has them (computing what is missing)."""
    from bouncetag.classifier.features import EXTRACTORS
    from bouncetag.classifier.text import word2vec_mean

    entries = [(item.path, item.content_hash) for item in items]
    report, hashes = cache.ensure(entries, names, jobs=options.jobs, console=console)
    for line in report.failed[:10]:
        warn(f"skipped (cannot decode): {line}")
    if len(report.failed) > 10:
        warn(f"... and {len(report.failed) - 10} more files could not be decoded")
    kept_items, feats = [], []
    lost = 0
    for item in items:
        content_hash = item.content_hash or (hashes.get(item.path) if item.path else None)
        if content_hash is None:
            lost += item.path is None
            continue
        row: dict[str, np.ndarray] = {}
        for name in names:
            if name == "w2v":
                transcript = cache.transcript(content_hash) or ""
                row[name] = word2vec_mean(word2vec, transcript, EXTRACTORS["w2v"].dim)[0]
            else:
                vec = cache.vector(content_hash, name)
                if vec is None:
                    break
                row[name] = vec
        else:
            kept_items.append(item)
            feats.append(row)
            continue
        lost += 1
    if lost:
        warn(f"{lost} labelled items have no audio and no cached features; left out")
    return _Matrix(kept_items, feats)


def _transcript_of(cache: FeatureCache, item: LabelledItem) -> str:
    """The cached transcript of an item ("" for instrumentals or when none is stored)."""
    content_hash = item.content_hash or (
        cache.known_hash(item.path) if item.path is not None else None
    )
    return (cache.transcript(content_hash) if content_hash else None) or ""


def _bert_base(cache: FeatureCache) -> Path:
    """The encoder fine-tuning starts from: text.bert_model, else the packaged MiniLM."""
    from bouncetag.classifier.text import packaged_bert_path

    configured = cache.config.text.bert_model
    return Path(configured).expanduser() if configured else packaged_bert_path()


def _finetune(
    cache: FeatureCache, data: _Matrix, options: TrainOptions, out_dir: Path,
    console: Console | None,
) -> dict[str, Any]:
    """Fine-tune MiniLM on the training transcripts, then recompute every item's "bert" row
    with it (the cache holds stock-MiniLM vectors; BERT on text alone is cheap).

    Returns:
        What model.json records under `finetuned_bert`.

    Raises:
        TrainingError: fewer than two genres have transcripts in the training split.
    """
    from bouncetag.trainer.finetune import FinetuneSettings, embed_texts, finetune_bert

    texts = [_transcript_of(cache, item) for item in data.items]
    # Only vocal tracks teach BERT anything; instrumentals have no text (and stay zeros).
    pairs = {
        split: [(t, it.genre) for t, it in zip(texts, data.items, strict=True)
                if it.split == split and t.strip()]
        for split in ("train", "valid")
    }
    max_length = cache.config.text.max_tokens
    settings = FinetuneSettings(
        epochs=options.finetune_epochs, learning_rate=options.finetune_learning_rate,
        batch_size=options.finetune_batch_size, max_length=max_length, seed=options.seed,
    )
    result = finetune_bert(
        _bert_base(cache), out_dir, pairs["train"], pairs["valid"], settings, console
    )
    started = time.perf_counter()
    vectors = embed_texts(result.path, texts, max_length)
    for row, vec in zip(data.features, vectors, strict=True):
        row["bert"] = vec
    meta = result.to_meta()
    meta["embed_seconds"] = round(time.perf_counter() - started, 1)
    meta["settings"] = {
        "epochs": settings.epochs, "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size, "max_length": settings.max_length,
        "seed": settings.seed,
    }
    return meta


def _train_transcripts(cache: FeatureCache, items: list[LabelledItem]) -> list[str]:
    # Word2Vec is unsupervised (no genres), so it learns from every transcript in the corpus
    # except the test split, which stays unseen until --report-test.
    out = []
    for item in items:
        if item.split == "test":
            continue
        content_hash = item.content_hash or (
            cache.known_hash(item.path) if item.path is not None else None
        )
        text = cache.transcript(content_hash) if content_hash else None
        if text:
            out.append(text)
    return out


# ---- fitting -------------------------------------------------------------------------------
def stack(features: list[dict[str, np.ndarray]], names: tuple[str, ...]) -> np.ndarray:
    """Rows of concatenated features in `names` order."""
    if not features:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.concatenate([f[n] for n in names]) for f in features]).astype(np.float32)


def fit_head(
    config: ModelConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    epochs: int,
    patience: int,
    learning_rate: float,
    seed: int,
    batch_size: int = 256,
) -> tuple[Any, dict[str, Any]]:
    """Train a GenreHead: standardised inputs, class weights, early stopping on validation loss.

    Args:
        config: the head's config (labels index `y_*`).
        x_train, y_train: training rows and label indices.
        x_valid, y_valid: validation rows and label indices (-1 = a genre the head lacks,
            ignored by the loss); empty: stop on training loss instead.
        epochs, patience, learning_rate, seed: the usual; the same seed gives the same head.

    Returns:
        The best head (eval mode) and a history dict.
    """
    # torch's thread count is process-wide, so it is left to the caller: inside the daemon a
    # scheduled retrain shares the process with analysis workers that use torch too.
    return _fit_head(
        config, x_train, y_train, x_valid, y_valid, epochs=epochs, patience=patience,
        learning_rate=learning_rate, seed=seed, batch_size=batch_size,
    )


def _fit_head(
    config: ModelConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    epochs: int,
    patience: int,
    learning_rate: float,
    seed: int,
    batch_size: int,
) -> tuple[Any, dict[str, Any]]:
    import torch

    from bouncetag.classifier.model import build_head

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    head = build_head(config, seed=seed)
    xt, yt = torch.as_tensor(x_train), torch.as_tensor(y_train, dtype=torch.long)
    head.set_standardisation(xt)
    n_classes = len(config.labels)
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    weights = len(y_train) / (n_classes * np.maximum(counts, 1.0))
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32))
    known = y_valid >= 0
    xv = torch.as_tensor(x_valid[known]) if len(x_valid) else None
    yv = torch.as_tensor(y_valid[known], dtype=torch.long) if len(x_valid) else None
    use_valid = xv is not None and len(xv) > 0
    plain_loss = torch.nn.CrossEntropyLoss()
    optimiser = torch.optim.AdamW(head.parameters(), lr=learning_rate, weight_decay=1e-3)
    best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
    epoch = 0
    for epoch in range(1, epochs + 1):
        head.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            loss_fn(head(xt[batch]), yt[batch]).backward()
            optimiser.step()
        head.eval()
        with torch.no_grad():
            if use_valid:
                loss = float(plain_loss(head(xv), yv))
            else:
                loss = float(loss_fn(head(xt), yt))
        # Count only real progress (0.1%): a loss creeping down forever wastes epochs.
        if loss < best_loss - max(1e-5, 1e-3 * abs(best_loss)):
            best_loss, best_epoch, stale = loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    history = {
        "epochs_run": epoch, "best_epoch": best_epoch, "best_loss": round(best_loss, 5),
        "stopped_on": "valid_loss" if use_valid else "train_loss",
    }
    return head, history


def _predict(head: Any, x: np.ndarray, labels: tuple[str, ...]) -> list[str]:
    import torch

    if len(x) == 0:
        return []
    with torch.inference_mode():
        idx = head(torch.as_tensor(x)).argmax(dim=-1).numpy()
    return [labels[i] for i in idx]


def _indices(items: list[LabelledItem], labels: tuple[str, ...]) -> np.ndarray:
    lookup = {g: i for i, g in enumerate(labels)}
    return np.array([lookup.get(item.genre, -1) for item in items], dtype=np.int64)


def _fit_and_score(
    data: _Matrix, names: tuple[str, ...], dims: tuple[int, ...], options: TrainOptions,
    splits: tuple[str, ...],
) -> tuple[Any, ModelConfig, dict[str, SplitReport], dict[str, Any]]:
    from bouncetag.classifier.model import ModelConfig

    part = {s: [i for i, it in enumerate(data.items) if it.split == s] for s in splits}
    train_items = [data.items[i] for i in part["train"]]
    labels = tuple(sorted({item.genre for item in train_items}))
    if len(labels) < 2:
        raise TrainingError(
            f"need at least two genres with training examples, found {len(labels)}"
            f"{': ' + labels[0] if labels else ''}; label more bounces"
        )
    config = ModelConfig(names, dims, labels, hidden=options.hidden, dropout=options.dropout)
    x = {s: stack([data.features[i] for i in part[s]], names) for s in splits}
    items = {s: [data.items[i] for i in part[s]] for s in splits}
    head, history = fit_head(
        config, x["train"], _indices(items["train"], labels),
        x["valid"], _indices(items["valid"], labels),
        epochs=options.epochs, patience=options.patience,
        learning_rate=options.learning_rate, seed=options.seed,
    )
    reports = {
        s: score_split(s, [it.genre for it in items[s]], _predict(head, x[s], labels), labels)
        for s in splits
    }
    return head, config, reports, history


# ---- promotion -----------------------------------------------------------------------------
def _score_current(
    paths: AppPaths, cache: FeatureCache, held_out: list[LabelledItem], options: TrainOptions,
    console: Console | None, warn: Callable[[str], None],
) -> tuple[str | None, float | None, str]:
    """The current model's macro-F1 on the held-out items (features from the cache)."""
    from bouncetag import registry
    from bouncetag.classifier.model import GenreModel

    version = registry.current_version(paths)
    if version is None:
        return None, None, "no current model"
    try:
        model = GenreModel.load(paths.models_dir / version)
        w2v = None
        if "w2v" in model.feature_names and model.word2vec_path is not None:
            from bouncetag.classifier.text import load_word2vec

            w2v = load_word2vec(model.word2vec_path)
        data = _gather(cache, held_out, model.feature_names, options, console, warn, w2v)
        if "bert" in model.feature_names and model.bert_path is not None and data.items:
            from bouncetag.trainer.finetune import embed_texts

            # That model's "bert" features come from its own fine-tuned encoder.
            vectors = embed_texts(
                model.bert_path, [_transcript_of(cache, it) for it in data.items],
                cache.config.text.max_tokens,
            )
            for row, vec in zip(data.features, vectors, strict=True):
                row["bert"] = vec
        x = stack(data.features, model.feature_names)
        probs = model.probabilities(x) if len(x) else np.zeros((0, len(model.labels)))
        preds = [model.labels[i] for i in probs.argmax(axis=1)] if len(x) else []
        score = score_split("held-out", [it.genre for it in data.items], preds).macro_f1
    except BounceTagError as exc:
        return version, None, f"current model {version} could not be scored ({exc})"
    return version, score, ""


def _record_run(
    store: Store, started: float, version: str | None, promoted: bool, reason: str,
    metrics: dict[str, Any], fingerprint: str,
) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO train_runs(started_at, finished_at, model_version, promoted, reason,"
            " metrics_json, fingerprint) VALUES (?,?,?,?,?,?,?)",
            (started, time.time(), version, int(promoted), reason, json.dumps(metrics),
             fingerprint),
        )


def last_run(store: Store) -> dict[str, Any] | None:
    """The most recent train_runs row as a dict, or None."""
    rows = store.query("SELECT * FROM train_runs ORDER BY id DESC LIMIT 1")
    if not rows:
        return None
    row = dict(rows[0])
    row["metrics"] = json.loads(row.pop("metrics_json") or "{}")
    return row


# ---- the run -------------------------------------------------------------------------------
def run_training(
    paths: AppPaths,
    config: Config,
    options: TrainOptions,
    *,
    store: Store | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Train, evaluate, save under the models dir, and promote when no worse (or forced).

    Args:
        paths: where models, the store and the cache live.
        config: transcription/text settings used to build features.
        options: this run's settings.
        store: an open store (opened and closed here when None).
        console: where progress and warnings go (None: quiet).

    Returns:
        The run's result; the report is also saved as report.json + PNGs in the model folder.

    Raises:
        TrainingError: no data, fewer than two genres, unknown features, bad GTZAN folder.
    """
    from bouncetag.classifier.features import resolve_feature_set
    from bouncetag.trainer.cache import FeatureCache

    try:
        names = resolve_feature_set(options.features)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if options.finetune_bert and "bert" not in names:
        raise TrainingError(
            f"--finetune-bert changes the bert features, but --features {options.features} "
            "does not use them (try all, text, or a list with bert)"
        )
    if options.finetune_epochs < 1:
        raise TrainingError("--finetune-epochs must be at least 1")
    started = time.time()
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        if console is not None:
            console.print(f"[yellow]warning:[/] {message}", highlight=False)

    own_store = store is None
    if store is None:
        from bouncetag.store import Store

        paths.ensure()
        store = Store(paths.db_file)
    cache = FeatureCache(store, paths, config)
    try:
        items = collect_items(store, options, warn)
        fingerprint = data_fingerprint(items)
        try:
            return _run(
                paths, options, store, cache, items, names, fingerprint, started, console, warn,
                warnings,
            )
        except TrainingError as exc:
            _record_run(store, started, None, False, f"failed: {exc}", {}, fingerprint)
            raise
    finally:
        cache.close()
        if own_store:
            store.close()


def _run(
    paths: AppPaths,
    options: TrainOptions,
    store: Store,
    cache: FeatureCache,
    items: list[LabelledItem],
    names: tuple[str, ...],
    fingerprint: str,
    started: float,
    console: Console | None,
    warn: Callable[[str], None],
    warnings: list[str],
) -> TrainResult:
    from bouncetag.classifier.features import EXTRACTORS
    from bouncetag.classifier.text import train_word2vec, word2vec_mean

    has_test = any(item.split == "test" for item in items)
    splits = ("train", "valid", "test") if options.report_test and has_test else (
        "train", "valid"
    )
    if options.report_test and not has_test:
        warn("--report-test: no test split (only GTZAN has one); reporting train and valid")
    # Features first (w2v as zeros), then Word2Vec on the training transcripts fills w2v in.
    word2vec = None
    data = _gather(cache, items, names, options, console, warn, None)
    if "w2v" in names:
        try:
            word2vec = train_word2vec(_train_transcripts(cache, data.items), seed=options.seed)
        except ValueError:
            warn("no transcript words in the training data: w2v features are zeros")
        if word2vec is not None:
            for item, row in zip(data.items, data.features, strict=True):
                content_hash = item.content_hash or cache.known_hash(item.path)
                text = (cache.transcript(content_hash) if content_hash else None) or ""
                row["w2v"] = word2vec_mean(word2vec, text, EXTRACTORS["w2v"].dim)[0]
    if not options.finetune_bert:
        return _fit_report_save(
            paths, options, store, cache, data, names, splits, word2vec, None, None,
            fingerprint, started, warn, warnings,
        )
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    # Beside the models (same file system), so the folder moves into the model for free.
    with tempfile.TemporaryDirectory(dir=paths.models_dir, prefix=".finetune-") as tmp:
        bert_dir = Path(tmp) / "bert"
        finetuned = _finetune(cache, data, options, bert_dir, console)
        return _fit_report_save(
            paths, options, store, cache, data, names, splits, word2vec, finetuned, bert_dir,
            fingerprint, started, warn, warnings,
        )


def _fit_report_save(
    paths: AppPaths,
    options: TrainOptions,
    store: Store,
    cache: FeatureCache,
    data: _Matrix,
    names: tuple[str, ...],
    splits: tuple[str, ...],
    word2vec: Any | None,
    finetuned: dict[str, Any] | None,
    bert_dir: Path | None,
    fingerprint: str,
    started: float,
    warn: Callable[[str], None],
    warnings: list[str],
) -> TrainResult:
    from bouncetag import registry
    from bouncetag.classifier.features import EXTRACTORS, FEATURE_SETS
    from bouncetag.classifier.model import ModelMeta, save_model
    from bouncetag.trainer.evaluate import save_report

    for message in few_example_warnings(data.items):
        warn(message)
    dims = tuple(EXTRACTORS[n].dim for n in names)
    head, model_config, reports, history = _fit_and_score(data, names, dims, options, splits)

    ablation: list[AblationRow] = []
    subsets: dict[tuple[str, ...], str] = {}
    for set_name in ABLATION_SETS:
        subset = tuple(n for n in FEATURE_SETS[set_name] if n in names)
        if subset and subset not in subsets:
            subsets[subset] = set_name
    if options.ablation and len(subsets) > 1:
        for subset, set_name in subsets.items():
            if subset == names:
                sub = reports  # the model itself
            else:
                sub_dims = tuple(EXTRACTORS[n].dim for n in subset)
                _h, _c, sub, _hist = _fit_and_score(data, subset, sub_dims, options, splits)
            ablation.append(
                AblationRow(
                    set_name, subset, sub["valid"].accuracy, sub["valid"].macro_f1,
                    sub["test"].accuracy if "test" in sub else None,
                    sub["test"].macro_f1 if "test" in sub else None,
                )
            )

    # Promotion: the held-out data are the validation split (GTZAN valid + held-out user labels).
    held_out = [it for it in data.items if it.split == "valid"]
    basis = "validation split"
    new_score = reports["valid"].macro_f1
    if not held_out:
        held_out = list(data.items)
        basis = "all labelled data (too few labels to hold any out)"
        new_score = score_split(
            "all", [it.genre for it in held_out],
            _predict(head, stack(data.features, names), model_config.labels),
        ).macro_f1
        warn("too few labels to hold any out: promotion compares on the training data")
    previous_version, previous_score, why = _score_current(
        paths, cache, held_out, options, None, lambda _m: None
    )
    if previous_version is None:
        promoted, reason = True, "first model"
    elif previous_score is None:
        promoted, reason = True, why + "; replacing it"
    elif new_score + PROMOTION_TOLERANCE >= previous_score:
        promoted = True
        reason = f"macro-F1 {new_score:.3f} >= {previous_score:.3f} ({previous_version}) on {basis}"
    elif options.force:
        promoted = True
        reason = (f"forced: macro-F1 {new_score:.3f} < {previous_score:.3f} ({previous_version})"
                  f" on {basis}")
    else:
        promoted = False
        reason = (f"not promoted: macro-F1 {new_score:.3f} < {previous_score:.3f} "
                  f"({previous_version}) on {basis}; use --force to install it anyway")

    version = registry.new_version_name(paths)
    summary = data_summary(data.items)
    summary["promoted"] = promoted
    summary["gtzan_split"] = options.gtzan_split if options.gtzan else None
    metrics = {
        s: {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "n": r.n} for s, r in reports.items()
    }
    metrics["history"] = history
    if finetuned is not None:
        summary["finetuned_bert"] = {
            k: finetuned[k] for k in ("n_train", "n_valid", "best_epoch", "epochs_run", "seconds")
        }
        metrics["finetuned_bert"] = finetuned["history"]
    metrics["promotion"] = {
        "basis": basis, "new_macro_f1": new_score, "previous_macro_f1": previous_score,
        "previous_version": previous_version, "promoted": promoted, "reason": reason,
    }
    split_note = (
        "GTZAN figures use the artist-filtered split (Kereliuk & Sturm): train 443 / valid 197"
        " / test 290" if options.gtzan and options.gtzan_split == "filtered" else
        "GTZAN random split: overstates accuracy by 10-20 points (artists repeat across splits)"
        if options.gtzan else "user labels: a fixed 25% of each genre (>= 4 examples) held out"
    )
    report = TrainReport(
        version=version, features=names, splits=reports, data_summary=summary,
        ablation=tuple(ablation), warnings=tuple(warnings), promotion=metrics["promotion"],
        split_note=split_note,
    )
    extractor_versions = {n: EXTRACTORS[n].version for n in names}
    if finetuned is not None:
        # Not the stock MiniLM's features: name the fine-tuned weights they came from.
        extractor_versions["bert"] += f"+ft:{finetuned['sha256'][:12]}"
    meta = ModelMeta(
        version=version, config=model_config, created_at=time.time(), data_summary=summary,
        metrics=metrics, extractor_versions=extractor_versions, finetuned_bert=finetuned,
    )
    # Write in a temp folder beside the models, then rename: a half-written model never shows.
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.models_dir, prefix=".training-") as tmp:
        staging = Path(tmp) / version
        save_model(staging, head, meta, word2vec=word2vec, bert_dir=bert_dir)
        save_report(report, staging)
        model_dir = paths.models_dir / version
        staging.rename(model_dir)
    if promoted:
        registry.promote(paths, model_dir)
    _record_run(store, started, version, promoted, reason, metrics, fingerprint)
    return TrainResult(
        version=version, model_dir=model_dir, promoted=promoted, reason=reason,
        previous_version=previous_version, new_score=new_score, previous_score=previous_score,
        report=report, fingerprint=fingerprint, started_at=started, finished_at=time.time(),
        warnings=tuple(warnings), finetuned_bert=finetuned,
    )
