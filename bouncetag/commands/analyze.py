"""`bouncetag analyze FILE...`: BPM, transcript and genre per file, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from bouncetag.commands import Context, failure_exit_code
from bouncetag.config import AUDIO_EXTENSIONS
from bouncetag.errors import BounceTagError, ModelMissingError

if TYPE_CHECKING:
    from bouncetag.classifier.results import Analysis


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze", help="BPM, transcript and genre for files or folders",
        description="Analyse bounces: BPM, a transcript of any vocals, and the genre's top 3.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="audio files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument("--write", action="store_true", help="also write the results into the tags")
    p.add_argument(
        "--dry-run", action="store_true",
        help="show the tag diff --write would make, write nothing (implies --write)",
    )
    p.add_argument(
        "--transcriber", choices=("whisper", "wav2vec2", "none"),
        help="override transcribe.backend",
    )
    p.add_argument("--min-bpm", type=float, help="override tempo.min_bpm")
    p.add_argument("--max-bpm", type=float, help="override tempo.max_bpm")
    p.set_defaults(handler=run)


def collect_files(paths: list[Path]) -> list[Path]:
    """Expand folders (recursively) to their audio files; files are kept as given, in order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                    and not p.name.startswith(".")
                )
            )
        else:
            files.append(path)
    return files


def _genre_cell(analysis: Analysis) -> str:
    if analysis.genre is None:
        return f"[dim]{analysis.genre_note or '-'}[/]"
    return "\n".join(f"{g} {p:.0%}" for g, p in analysis.genre.top)


def _tempo_cell(analysis: Analysis) -> str:
    t = analysis.tempo
    if t is None:
        return "-"
    if t.source == "estimate" and t.confidence <= 0.0:
        return "[dim]no beat found[/]"
    text = f"[bold]{t.bpm:.1f}[/] ({t.bpm_int})\nconf {t.confidence:.2f}, {t.source}"
    if t.source == "file" and t.estimated_bpm is not None:
        text += f"\nestimate {t.estimated_bpm:.1f}"
    return text


def _transcript_cell(analysis: Analysis) -> str:
    tr = analysis.transcript
    if tr is None:
        return "-"
    if tr.backend == "none":
        return "[dim]not transcribed[/]"
    if tr.is_instrumental:
        return "[dim]instrumental[/]"
    return tr.text if len(tr.text) <= 160 else tr.text[:157] + "..."


def run(ctx: Context, args: argparse.Namespace) -> int:
    from rich.table import Table

    from bouncetag.runner import Analyzer

    config = ctx.config
    if args.dry_run:
        args.write = True  # a dry run of the tag write, not a silent no-op
    if args.transcriber:
        config = config.replace("transcribe", backend=args.transcriber)
    if args.min_bpm is not None or args.max_bpm is not None:
        from bouncetag.config import _validate

        config = _validate(
            config.replace(
                "tempo",
                min_bpm=args.min_bpm if args.min_bpm is not None else config.tempo.min_bpm,
                max_bpm=args.max_bpm if args.max_bpm is not None else config.tempo.max_bpm,
            )
        )
    files = collect_files(args.paths)
    if not files:
        ctx.err_console.print("error: no audio files found in the given paths")
        return 2
    analyzer = Analyzer(config, ctx.paths)
    store = ctx.open_store() if args.write and not args.dry_run else None
    table = Table(title="bouncetag analyze", show_lines=True)
    for column in ("File", "BPM", "Transcript", "Genre"):
        table.add_column(column, overflow="fold")
    failures: list[BounceTagError] = []
    tag_reports: list[tuple[Path, list[str]]] = []  # shown under the table, not squeezed into it
    try:
        for index, path in enumerate(files, start=1):
            prefix = f"[{index}/{len(files)}] " if len(files) > 1 else ""
            try:
                with ctx.err_console.status(f"{prefix}{path.name}: decoding") as status:

                    def on_stage(
                        stage: str, state: str, _status=status, _name=path.name, _prefix=prefix
                    ) -> None:
                        if state == "start":
                            _status.update(f"{_prefix}{_name}: {stage}")

                    analysis = analyzer.analyze_file(path, on_stage=on_stage)
            except ModelMissingError:
                raise  # the same for every file: stop and say how to install it
            except BounceTagError as exc:
                failures.append(exc)
                ctx.err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
                continue
            tag_lines: list[str] = []
            if args.write:
                tag_lines, tag_error = _write_tags(ctx, config, analysis, store, args.dry_run)
                if tag_error is not None:
                    failures.append(tag_error)
            if args.json:
                obj = analysis.to_json()
                if args.write:
                    obj["tags"] = tag_lines
                print(json.dumps(obj), flush=True)
            else:
                table.add_row(
                    str(path), _tempo_cell(analysis), _transcript_cell(analysis),
                    _genre_cell(analysis),
                )
                if tag_lines:
                    tag_reports.append((path, tag_lines))
    finally:
        if store is not None:
            store.close()
    if not args.json and table.row_count:
        ctx.console.print(table)
        for path, lines in tag_reports:
            header, *rest = lines
            ctx.console.print(f"[bold]{path}[/] {header}", highlight=False)
            for line in rest:
                ctx.console.print(f"  {line}", highlight=False, markup=False)
    return failure_exit_code(failures, len(files))


def _write_tags(
    ctx: Context, config, analysis: Analysis, store, dry_run: bool
) -> tuple[list[str], BounceTagError | None]:
    """Write (or with dry_run, plan) tags; returns the diff lines and the error, if it failed."""
    from bouncetag.errors import TagError
    from bouncetag.tags import format_plan, write_analysis

    try:
        report = write_analysis(
            Path(analysis.path), analysis, config.tags, config.genre.min_confidence,
            store=store, dry_run=dry_run,
        )
    except TagError as exc:
        ctx.err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return [f"tags: not written ({exc.message})"], exc
    lines = format_plan(report.plan)
    header = "tags (dry run):" if dry_run else ("tags written:" if report.written else "tags:")
    return [header, *lines] + ([report.message] if report.message else []), None
