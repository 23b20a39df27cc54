"""`bouncetag label` and `bouncetag labels`: the user's own genre labels, kept in the store."""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bouncetag.commands import Context
from bouncetag.errors import BounceTagError, TrainingError, UsageError

if TYPE_CHECKING:
    from bouncetag.store import Store

CSV_COLUMNS = ("content_hash", "path", "genre", "source")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "label",
        help="label bounces with your own genre (for `bouncetag train`)",
        description="Label files with a genre: `label FILE... GENRE`, or take the genres from "
        "sub-folder names (--from-folders) or from genre tags you wrote yourself (--from-tags). "
        "Labels are keyed by the audio's content, so they survive renames and moves.",
    )
    p.add_argument("items", nargs="*", metavar="FILE... GENRE",
                   help="one or more audio files (or folders), then the genre")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--from-folders", type=Path, metavar="DIR",
                        help="each sub-folder of DIR is a genre; label the audio inside it")
    source.add_argument("--from-tags", type=Path, metavar="DIR",
                        help="label each file under DIR with the genre tag you wrote "
                        "(bouncetag's own genre tags are ignored)")
    p.set_defaults(handler=run_label)

    q = subparsers.add_parser(
        "labels", help="list, remove, export or import genre labels",
        description="`labels` or `labels list`; `labels remove FILE`; "
        "`labels export CSV`; `labels import CSV`.",
    )
    q.add_argument("action", nargs="?", default="list",
                   choices=("list", "remove", "export", "import"))
    q.add_argument("target", nargs="?", type=Path, help="FILE for remove, CSV for export/import")
    q.set_defaults(handler=run_labels)


def _audio_files(root: Path, extensions: tuple[str, ...]) -> Iterator[Path]:
    """Audio files under root (or root itself), sorted, skipping hidden files."""
    root = Path(root).expanduser()
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in extensions and not path.name.startswith("."):
            yield path


def _label_files(
    ctx: Context, store: Store, pairs: list[tuple[Path, str]], source: str
) -> int:
    """Hash and label each (file, genre); report failures; exit code 1 if any failed."""
    from rich.progress import Progress

    from bouncetag.trainer.fingerprint import file_fingerprint

    done: Counter[str] = Counter()
    failed = 0
    with Progress(console=ctx.err_console, transient=True, disable=len(pairs) < 10) as progress:
        task = progress.add_task("labelling", total=len(pairs))
        for path, genre in pairs:
            try:
                content_hash = file_fingerprint(path)
            except BounceTagError as exc:
                ctx.err_console.print(f"[red]error:[/] {exc}", highlight=False)
                failed += 1
            else:
                store.add_label(content_hash, path.resolve(), genre, source)
                done[genre] += 1
            progress.advance(task)
    summary = ", ".join(f"{g}: {n}" for g, n in sorted(done.items())) or "none"
    ctx.console.print(f"labelled {sum(done.values())} file(s) ({summary})", highlight=False)
    return 1 if failed else 0


def _clean_genre(genre: str) -> str:
    genre = " ".join(genre.split())
    if not genre:
        raise UsageError("the genre must not be empty")
    return genre


def run_label(ctx: Context, args: argparse.Namespace) -> int:
    extensions = ctx.config.watch.extensions
    pairs: list[tuple[Path, str]] = []
    if args.from_folders is not None:
        if args.items:
            raise UsageError("--from-folders takes no FILE or GENRE arguments")
        root = args.from_folders.expanduser()
        if not root.is_dir():
            raise TrainingError("not a folder", root)
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        for folder in sorted(folders):
            pairs += [(f, _clean_genre(folder.name)) for f in _audio_files(folder, extensions)]
        source = "folder"
    elif args.from_tags is not None:
        if args.items:
            raise UsageError("--from-tags takes no FILE or GENRE arguments")
        pairs, skipped = _pairs_from_tags(ctx, args.from_tags.expanduser(), extensions)
        if skipped:
            ctx.err_console.print(
                f"{skipped} file(s) have no genre tag of your own; left unlabelled"
            )
        source = "tags"
    else:
        if len(args.items) < 2:
            raise UsageError("usage: bouncetag label FILE... GENRE (at least one file)")
        genre = _clean_genre(args.items[-1])
        for item in args.items[:-1]:
            path = Path(item).expanduser()
            if not path.exists():
                raise UsageError("no such file", path)
            pairs += [(f, genre) for f in _audio_files(path, extensions)]
        source = "manual"
    if not pairs:
        raise TrainingError("no audio files found to label")
    with ctx.open_store() as store:
        return _label_files(ctx, store, pairs, source)


def _pairs_from_tags(
    ctx: Context, root: Path, extensions: tuple[str, ...]
) -> tuple[list[tuple[Path, str]], int]:
    """(file, genre) for files whose genre tag the user wrote; bouncetag's own are skipped."""
    from bouncetag.tags import read_tags
    from bouncetag.tags.mapping import GENRE, GENRE_RIFF

    if not root.exists():
        raise TrainingError("no such folder", root)
    pairs, skipped = [], 0
    for path in _audio_files(root, extensions):
        try:
            snapshot = read_tags(path)
        except BounceTagError as exc:
            ctx.err_console.print(f"[yellow]skipped:[/] {exc}", highlight=False)
            skipped += 1
            continue
        genre = ""
        for key in (GENRE, GENRE_RIFF):
            value = snapshot.fields.get(key, "").strip()
            if value and key not in snapshot.ours:
                genre = value.split(";")[0].strip()
                break
        if genre:
            pairs.append((path, _clean_genre(genre)))
        else:
            skipped += 1
    return pairs, skipped


def run_labels(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.open_store() as store:
        if args.action == "list":
            return _list(ctx, store)
        if args.target is None:
            raise UsageError(f"usage: bouncetag labels {args.action} "
                                f"{'FILE' if args.action == 'remove' else 'CSV'}")
        if args.action == "remove":
            return _remove(ctx, store, args.target.expanduser())
        if args.action == "export":
            return _export(ctx, store, args.target.expanduser())
        return _import(ctx, store, args.target.expanduser())


def _list(ctx: Context, store: Store) -> int:
    from rich.table import Table

    labels = store.labels()
    if not labels:
        ctx.console.print("no labels yet: `bouncetag label FILE... GENRE`")
        return 0
    table = Table(title=f"{len(labels)} labels")
    for col in ("genre", "path", "source", "content"):
        table.add_column(col)
    for lab in labels:
        gone = "" if Path(lab.path).exists() else " [dim](moved or gone)[/]"
        table.add_row(lab.genre, lab.path + gone, lab.source, lab.content_hash[3:13])
    ctx.console.print(table)
    counts = Counter(lab.genre for lab in labels)
    ctx.console.print(", ".join(f"{g}: {n}" for g, n in sorted(counts.items())), highlight=False)
    return 0


def _remove(ctx: Context, store: Store, target: Path) -> int:
    from bouncetag.trainer.fingerprint import file_fingerprint

    hashes = {lab.content_hash for lab in store.labels() if Path(lab.path) == target.resolve()}
    if target.exists():
        hashes.add(file_fingerprint(target))
    removed = sum(store.remove_label(h) for h in hashes)
    if not removed:
        raise TrainingError("no label for this file", target)
    ctx.console.print(f"removed the label of {target}", highlight=False)
    return 0


def _export(ctx: Context, store: Store, target: Path) -> int:
    labels = store.labels()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for lab in labels:
                writer.writerow([lab.content_hash, lab.path, lab.genre, lab.source])
    except OSError as exc:
        raise TrainingError(f"cannot write CSV: {exc.strerror}", target) from None
    ctx.console.print(f"exported {len(labels)} labels to {target}", highlight=False)
    return 0


def _import(ctx: Context, store: Store, source: Path) -> int:
    """Rows need a genre and a content_hash or a path (then the file is hashed)."""
    from bouncetag.trainer.fingerprint import file_fingerprint

    try:
        with source.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise TrainingError(f"cannot read CSV: {exc.strerror}", source) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TrainingError(f"cannot read CSV: not a UTF-8 CSV file ({exc})", source) from None
    imported, failed = 0, 0
    for number, row in enumerate(rows, start=2):
        genre = " ".join((row.get("genre") or "").split())
        content_hash = (row.get("content_hash") or "").strip()
        path = (row.get("path") or "").strip()
        if not genre or not (content_hash or path):
            ctx.err_console.print(f"{source}:{number}: needs genre and content_hash or path")
            failed += 1
            continue
        if not content_hash:
            try:
                content_hash = file_fingerprint(path)
            except BounceTagError as exc:
                ctx.err_console.print(f"[red]error:[/] {source}:{number}: {exc}", highlight=False)
                failed += 1
                continue
        store.add_label(content_hash, path, genre, "csv")
        imported += 1
    ctx.console.print(f"imported {imported} labels from {source}", highlight=False)
    return 1 if failed else 0
