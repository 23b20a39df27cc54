"""`bouncetag tags FILE...`: show tags and who wrote them; `bouncetag undo`: restore them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from bouncetag.commands import Context, failure_exit_code
from bouncetag.errors import BounceTagError

if TYPE_CHECKING:
    from bouncetag.tags import TagSnapshot, TagWriteReport

EXIT_FAILURES = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tags", help="show a file's tags and whether bouncetag or you wrote them",
        description="Show BPM, genre, transcript and provenance tags, marking which values "
                    "bouncetag wrote and which are yours.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.set_defaults(handler=run_tags)

    u = subparsers.add_parser(
        "undo", help="restore the tags bouncetag replaced",
        description="Restore the tags a file had before bouncetag's latest write to it. Values "
                    "you changed since are left as you set them.",
    )
    u.add_argument("files", nargs="*", type=Path, metavar="FILE", help="audio files")
    u.add_argument("--last", type=int, metavar="N",
                   help="undo the N most recent tag writes, whatever the file")
    u.set_defaults(handler=run_undo)


def _snapshot_json(snapshot: TagSnapshot) -> dict[str, object]:
    return {
        "path": snapshot.path, "format": snapshot.format, "fields": snapshot.fields,
        "other": snapshot.other, "ours": sorted(snapshot.ours),
    }


def _print_snapshot(ctx: Context, snapshot: TagSnapshot) -> None:
    from rich.table import Table

    from bouncetag.tags import mapping as m

    table = Table(title=f"{snapshot.path} ({snapshot.format})", title_justify="left")
    table.add_column("tag")
    table.add_column("value", overflow="fold")
    table.add_column("written by")
    for name in m.MAIN_FIELDS:
        value = snapshot.fields.get(name)
        if not value:
            table.add_row(name, "[dim](empty)[/]", "")
            continue
        who = "[green]bouncetag[/]" if name in snapshot.ours else "[yellow]you[/]"
        table.add_row(name, value, who)
    for name, label in ((m.GENRE_RIFF, "genre (RIFF INFO)"), (m.BPM_RIFF, "bpm (RIFF INFO)")):
        value = snapshot.fields.get(name)
        if value:
            who = "[green]bouncetag[/]" if name in snapshot.ours else "[yellow]you[/]"
            table.add_row(label, value, who)
    for name, value in snapshot.other.items():
        table.add_row(name, value, "[yellow]you[/]")
    for name in m.PROVENANCE_FIELDS:
        value = snapshot.fields.get(name)
        if value:
            table.add_row(f"[dim]{name}[/]", f"[dim]{value}[/]", "[dim]bouncetag[/]")
    ctx.console.print(table)


def run_tags(ctx: Context, args: argparse.Namespace) -> int:
    from bouncetag.tags import read_tags

    failures: list[BounceTagError] = []
    for path in args.files:
        try:
            snapshot = read_tags(path)
        except BounceTagError as exc:
            failures.append(exc)
            ctx.err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            continue
        if args.json:
            print(json.dumps(_snapshot_json(snapshot), ensure_ascii=False), flush=True)
        else:
            _print_snapshot(ctx, snapshot)
    return failure_exit_code(failures, len(args.files))


def _print_report(ctx: Context, report: TagWriteReport) -> None:
    from bouncetag.tags import format_plan

    mark = "[green]restored[/]" if report.written else "[yellow]unchanged[/]"
    ctx.console.print(f"{mark} {report.path}: {report.message}", highlight=False)
    for line in format_plan(report.plan):
        ctx.console.print(f"  {line}", highlight=False, markup=False)


def run_undo(ctx: Context, args: argparse.Namespace) -> int:
    from bouncetag.tags import undo, undo_last

    if args.last is None and not args.files:
        ctx.err_console.print("error: name FILE(s) or use --last N")
        return 2
    if args.last is not None and args.files:
        ctx.err_console.print("error: give FILE(s) or --last N, not both")
        return 2
    if args.last is not None and args.last < 1:
        ctx.err_console.print("error: --last needs a positive number")
        return 2
    failures: list[BounceTagError] = []
    id3_version = ctx.config.tags.id3_version
    with ctx.open_store() as store:
        if args.last is not None:
            reports = undo_last(store, args.last, id3_version=id3_version)
            if not reports:
                ctx.console.print("no tag writes to undo")
            failed = 0
            for report in reports:
                _print_report(ctx, report)
                failed += not report.written and not report.message.startswith("nothing")
            return EXIT_FAILURES if failed else 0
        for path in args.files:
            try:
                _print_report(ctx, undo(path, store, id3_version=id3_version))
            except BounceTagError as exc:
                failures.append(exc)
                ctx.err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return failure_exit_code(failures, len(args.files))
