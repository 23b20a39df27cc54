"""Training data: GTZAN in its usual layouts with the artist-filtered split, and user labels."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bouncetag.errors import TrainingError

GTZAN_GENRES = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)
# The clip in every GTZAN copy that no decoder can read.
GTZAN_UNREADABLE = frozenset({"jazz/jazz.00054"})
SPLITS = ("train", "valid", "test")
FILTERED_COUNTS = {"train": 443, "valid": 197, "test": 290}
USER_VALID_FRACTION = 0.25
MIN_EXAMPLES_WARNING = 5


@dataclass(frozen=True)
class LabelledItem:
    """One training example: where its audio is, its genre, and which split it belongs to."""

    key: str  # "blues/blues.00012" for GTZAN, the content hash for user labels
    genre: str
    split: str  # train | valid | test
    source: str  # "gtzan" | "user"
    path: Path | None  # None when a labelled file has gone (its cached features may remain)
    content_hash: str | None = None  # known up front for user labels


def split_lists() -> dict[str, list[str]]:
    """The shipped Kereliuk & Sturm artist-filtered split: split -> ["genre/genre.000NN", ...].

    The lists come from the dnn-mgr repository (train/valid/test_filtered.txt, 1-based indices
    into the sorted 1000 GTZAN clips), written out here as clip names.
    """
    out: dict[str, list[str]] = {}
    folder = resources.files("bouncetag.trainer") / "splits"
    for split in SPLITS:
        text = (folder / f"{split}_filtered.txt").read_text(encoding="utf-8")
        out[split] = [line.strip().rsplit(".", 1)[0] for line in text.splitlines() if line.strip()]
    return out


def find_gtzan_root(directory: Path) -> Path:
    """The folder whose sub-folders are the ten genres.

    Accepts the folder itself, or one holding `genres/`, `genres_original/` (Kaggle) or
    `Data/genres_original/`.

    Raises:
        TrainingError: no GTZAN layout is found.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise TrainingError("GTZAN folder not found", directory)
    candidates = [
        directory, directory / "genres", directory / "genres_original",
        directory / "Data" / "genres_original", directory / "gtzan" / "genres",
    ]
    for root in candidates:
        if root.is_dir() and sum((root / g).is_dir() for g in GTZAN_GENRES) >= 2:
            return root
    raise TrainingError(
        "not a GTZAN folder: expected genres/<genre>/<genre>.000NN.au|wav "
        "or Kaggle's genres_original/",
        directory,
    )


def _clip_files(root: Path) -> dict[str, Path]:
    """clip name ("blues/blues.00012") -> file, for .wav and .au clips."""
    found: dict[str, Path] = {}
    for genre in GTZAN_GENRES:
        folder = root / genre
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".wav", ".au") and path.name.startswith(genre + "."):
                name = f"{genre}/{path.name.rsplit('.', 1)[0]}"
                found.setdefault(name, path)
    return found


def load_gtzan(
    directory: Path,
    split: str = "filtered",
    seed: int = 0,
    warn: Callable[[str], None] | None = None,
) -> list[LabelledItem]:
    """GTZAN clips with their genre and split.

    Args:
        directory: a GTZAN folder in one of the layouts `find_gtzan_root` accepts.
        split: "filtered" (artist-filtered, the honest one) or "random" (stratified 50/25/25 by
            clip; overstates accuracy because artists repeat across splits - labelled as such).
        seed: for the random split.
        warn: called with a message for skipped clips.

    Returns:
        The items, train/valid/test as the split says.

    Raises:
        TrainingError: no GTZAN layout or no clips.
    """
    warn = warn or (lambda _msg: None)
    root = find_gtzan_root(directory)
    files = _clip_files(root)
    if not files:
        raise TrainingError("no GTZAN clips (<genre>.000NN.wav or .au) found", root)
    for name in sorted(GTZAN_UNREADABLE & files.keys()):
        warn(f"skipping {files[name].name}: the known unreadable GTZAN clip")
    items: list[LabelledItem] = []
    if split == "filtered":
        missing = 0
        for part, names in split_lists().items():
            for name in names:
                if name in GTZAN_UNREADABLE:
                    continue
                if name not in files:
                    missing += 1
                    continue
                items.append(LabelledItem(name, name.split("/")[0], part, "gtzan", files[name]))
        if missing:
            warn(f"{missing} clips of the artist-filtered split are not in {root}")
    elif split == "random":
        by_genre: dict[str, list[str]] = defaultdict(list)
        for name in sorted(files):
            if name not in GTZAN_UNREADABLE:
                by_genre[name.split("/")[0]].append(name)
        rng = random.Random(seed)
        for genre, names in sorted(by_genre.items()):
            rng.shuffle(names)
            n_valid = n_test = len(names) // 4
            for i, name in enumerate(names):
                part = "valid" if i < n_valid else "test" if i < n_valid + n_test else "train"
                items.append(LabelledItem(name, genre, part, "gtzan", files[name]))
    else:
        raise TrainingError(f"unknown GTZAN split {split!r} (filtered or random)")
    if not items:
        raise TrainingError("no GTZAN clips of the split were found", root)
    return items


def split_user_labels(
    labels: Iterable[tuple[str, str, str]], valid_fraction: float = USER_VALID_FRACTION
) -> list[LabelledItem]:
    """Hold out a deterministic share of each genre's user labels for validation.

    Args:
        labels: (content_hash, path, genre) triples.
        valid_fraction: the share held out per genre; genres with fewer than 4 examples train
            on all of them (too few to hold any out).

    Returns:
        The labels as train and valid items; the choice depends only on the content hashes, so
        adding a label never reshuffles the others much.
    """
    by_genre: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for content_hash, path, genre in labels:
        by_genre[genre].append((content_hash, path))
    items: list[LabelledItem] = []
    for genre, entries in sorted(by_genre.items()):
        ranked = sorted(entries, key=lambda e: hashlib.sha1(e[0].encode()).hexdigest())
        n_valid = max(1, round(len(ranked) * valid_fraction)) if len(ranked) >= 4 else 0
        for i, (content_hash, path) in enumerate(ranked):
            file = Path(path)
            items.append(
                LabelledItem(
                    key=content_hash, genre=genre, split="valid" if i < n_valid else "train",
                    source="user", path=file if file.exists() else None,
                    content_hash=content_hash,
                )
            )
    return items


def data_summary(items: list[LabelledItem]) -> dict[str, object]:
    """Counts per genre and split, sources, and the data fingerprint, for the checkpoint."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in SPLITS})
    for item in items:
        counts[item.genre][item.split] += 1
    return {
        "counts": {g: dict(c) for g, c in sorted(counts.items())},
        "sources": dict(Counter(item.source for item in items)),
        "n_items": len(items),
        "fingerprint": data_fingerprint(items),
    }


def data_fingerprint(items: Iterable[LabelledItem]) -> str:
    """A hash of which examples exist and their genres: changes when labels or files arrive."""
    rows = sorted((item.source, item.key, item.genre) for item in items)
    return hashlib.sha1(json.dumps(rows).encode()).hexdigest()[:16]


def few_example_warnings(items: list[LabelledItem]) -> list[str]:
    """One warning per genre with fewer than MIN_EXAMPLES_WARNING examples in all."""
    counts = Counter(item.genre for item in items)
    return [
        f"genre {genre!r} has only {n} example{'s' if n != 1 else ''}; "
        f"its figures are unreliable (label at least {MIN_EXAMPLES_WARNING})"
        for genre, n in sorted(counts.items())
        if n < MIN_EXAMPLES_WARNING
    ]
