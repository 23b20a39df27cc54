"""`bouncetag watch`, `bouncetag status` and `bouncetag service install`: the daemon's commands."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from bouncetag.commands import Context

LOG_FILE = "bouncetag.log"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "watch",
        help="watch export folders and tag every new bounce (live dashboard)",
        description="Watch folders (and those in [watch].folders) and analyse + tag every new or "
        "re-exported bounce exactly once. Ctrl-C or SIGTERM stop it cleanly.",
    )
    p.add_argument("folders", nargs="*", type=Path, metavar="DIR", help="folders to watch")
    p.add_argument(
        "--polling", action="store_true", help="use the polling observer (network/SMB drives)"
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="print one JSON line per event instead of the dashboard",
    )
    p.add_argument("--workers", type=int, default=None, help="analysis workers (watch.workers)")
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="S",
        help="seconds a file must stay unchanged before it is read (watch.settle_seconds)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="scan, process everything that needs it, then exit (cron, tests)",
    )
    p.add_argument("--dry-run", action="store_true", help="analyse but write no tags")
    p.add_argument(
        "--two-pass",
        action="store_true",
        help="write BPM (and genre) first, the transcript in a second write",
    )
    p.add_argument(
        "--no-transcript",
        action="store_true",
        help="skip transcription (transcribe.backend = none): much faster",
    )
    p.add_argument(
        "--train-schedule",
        default=None,
        metavar="CRON",
        help="retrain on this cron schedule, e.g. '0 3 * * *' (train.schedule)",
    )
    p.set_defaults(handler=run_watch)

    s = subparsers.add_parser("status", help="the state store's figures and the last failures")
    s.add_argument("--failures", type=int, default=10, metavar="N", help="show the last N failures")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(handler=run_status)

    svc = subparsers.add_parser("service", help="run the daemon as a login service")
    svc_sub = svc.add_subparsers(dest="service_command", metavar="ACTION")
    inst = svc_sub.add_parser(
        "install",
        help="write a systemd user unit (Linux) or launchd plist (macOS)",
    )
    inst.add_argument(
        "folders",
        nargs="*",
        type=Path,
        metavar="DIR",
        help="folders to watch (default: [watch].folders from the config)",
    )
    inst.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the file instead of writing it",
    )
    inst.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="write here instead of the user's systemd/launchd folder",
    )
    inst.add_argument(
        "--kind",
        choices=("systemd", "launchd"),
        default=None,
        help="service manager (default: launchd on macOS, systemd elsewhere)",
    )
    inst.set_defaults(handler=run_service_install)
    svc.set_defaults(handler=_service_help(svc))


def _service_help(parser: argparse.ArgumentParser):
    def show(ctx: Context, args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def _setup_log_file(log_dir: Path) -> logging.Handler:
    """A rotating plain-text log of events and errors; configured by the command, not at import."""
    from logging.handlers import RotatingFileHandler

    log_dir.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(
        log_dir / LOG_FILE, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("bouncetag")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def run_watch(ctx: Context, args: argparse.Namespace) -> int:
    from bouncetag.daemon.service import DaemonService, resolve_folders
    from bouncetag.events import EventSink, JsonLinesSink, LoggingSink, MultiSink

    config = ctx.config
    if args.workers is not None:
        if args.workers < 1:
            from bouncetag.errors import ConfigError

            raise ConfigError("--workers: must be at least 1")
        config = config.replace("watch", workers=args.workers)
    if args.settle is not None:
        config = config.replace("watch", settle_seconds=max(0.0, args.settle))
    if args.polling:
        config = config.replace("watch", polling=True)
    if args.no_transcript:
        config = config.replace("transcribe", backend="none")
    if args.train_schedule:
        config = config.replace("train", schedule=args.train_schedule)
    folders = resolve_folders(config, args.folders)

    handler = _setup_log_file(ctx.paths.log_dir)
    sinks: list[EventSink] = [LoggingSink(logging.getLogger("bouncetag.events"))]
    dashboard = None
    if args.headless:
        sinks.append(JsonLinesSink(sys.stdout))
    else:
        from bouncetag.daemon.dashboard import DashboardSink

        dashboard = DashboardSink(ctx.console)
        sinks.append(dashboard)
    service = DaemonService(
        config,
        ctx.paths,
        folders,
        MultiSink(sinks),
        polling=args.polling,
        watch=not args.once,
        dry_run=args.dry_run,
        two_pass=args.two_pass,
    )
    stop_requested = threading.Event()
    reason = ["finished"]

    def on_signal(signum: int, frame: object) -> None:
        reason[0] = signal.Signals(signum).name
        stop_requested.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        if dashboard is not None:
            dashboard.start()
        service.start()
        try:
            while not stop_requested.is_set():
                if args.once and service.wait_idle(0.2):
                    break
                stop_requested.wait(0.2 if args.once else 0.5)
        except KeyboardInterrupt:
            reason[0] = "SIGINT"
        finally:
            service.stop(grace=30.0, reason=reason[0])
    finally:
        if dashboard is not None:
            dashboard.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
        logging.getLogger("bouncetag").removeHandler(handler)
        handler.close()
    if args.once:
        return 1 if _failed_in_folders(service) else 0
    return 130 if reason[0] == "SIGINT" else 0


def _failed_in_folders(service: object) -> bool:
    """Whether --once ended with files in the failed state (exit code 1)."""
    from bouncetag.store import Store

    store = Store(service.paths.db_file)  # type: ignore[attr-defined]
    try:
        failed = store.files("failed")
        return any(
            any(Path(f.path).is_relative_to(d) for d in service.folders)  # type: ignore[attr-defined]
            for f in failed
        )
    finally:
        store.close()


def run_status(ctx: Context, args: argparse.Namespace) -> int:
    import json

    from rich.table import Table

    from bouncetag.daemon.service import read_daemon_info

    info = read_daemon_info(ctx.paths)
    with ctx.open_store() as store:
        counts = store.status_counts()
        failures = store.query(
            "SELECT path, attempts, last_error, updated_at FROM files WHERE status = 'failed'"
            " ORDER BY updated_at DESC LIMIT ?",
            (args.failures,),
        )
        processed = store.query("SELECT COALESCE(SUM(processed_count), 0) AS n FROM files")[0]["n"]
        last_done = store.query(
            "SELECT path, updated_at FROM files WHERE status = 'done' ORDER BY updated_at DESC"
            " LIMIT 1"
        )
    if args.json:
        ctx.console.print_json(
            json.dumps(
                {
                    "daemon": None
                    if info is None
                    else {
                        "pid": info.pid,
                        "folders": list(info.folders),
                        "started_at": info.started_at,
                    },
                    "counts": counts,
                    "processed": processed,
                    "failures": [
                        {"path": r["path"], "attempts": r["attempts"], "reason": r["last_error"]}
                        for r in failures
                    ],
                }
            )
        )
        return 0
    if info is None:
        ctx.console.print("daemon: [dim]not running[/]")
    else:
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started_at))
        ctx.console.print(
            f"daemon: [green]running[/] (pid {info.pid}, since {since}) watching "
            + ", ".join(info.folders)
        )
    ctx.console.print(f"store: {ctx.paths.db_file}")
    table = Table(title="files", show_header=True)
    table.add_column("status")
    table.add_column("files", justify="right")
    for status in ("done", "pending", "processing", "failed", "skipped"):
        table.add_row(status, str(counts.get(status, 0)))
    table.add_row("[bold]total[/]", str(sum(counts.values())))
    ctx.console.print(table)
    ctx.console.print(f"analyses completed: {processed}")
    unfinished = counts.get("processing", 0) + counts.get("pending", 0)
    if info is None and unfinished:
        ctx.console.print(
            f"{unfinished} file(s) were left unfinished by the last run; "
            "`bouncetag watch` finishes them on its next start"
        )
    if last_done:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_done[0]["updated_at"]))
        ctx.console.print(f"last tagged: {last_done[0]['path']} at {when}")
    if failures:
        ft = Table(title="last failures")
        ft.add_column("file", overflow="fold")
        ft.add_column("attempts", justify="right")
        ft.add_column("reason", overflow="fold")
        for r in failures:
            ft.add_row(r["path"], str(r["attempts"]), r["last_error"] or "")
        ctx.console.print(ft)
    else:
        ctx.console.print("no failures")
    return 0


def run_service_install(ctx: Context, args: argparse.Namespace) -> int:
    from bouncetag.daemon.systemd import build_service_file, default_kind
    from bouncetag.errors import ConfigError

    folders = list(args.folders)
    if not folders and not ctx.config.watch.folders:
        raise ConfigError(
            "watch.folders: give a folder (bouncetag service install DIR) or set it in the config"
        )
    for folder in folders:
        # Caught now, not by a service that exits at start and is restarted every few seconds.
        if not folder.expanduser().is_dir():
            raise ConfigError(f"watch.folders: {folder} is not an existing folder")
    service_file = build_service_file(
        args.kind or default_kind(),
        folders,
        ctx.config_path,
        ctx.paths.log_dir,
        args.dest,
    )
    if args.print_only:
        ctx.console.print(service_file.text, markup=False, highlight=False, end="", soft_wrap=True)
        return 0
    service_file.path.parent.mkdir(parents=True, exist_ok=True)
    service_file.path.write_text(service_file.text, encoding="utf-8")
    ctx.console.print(f"wrote {service_file.kind} service: {service_file.path}")
    ctx.console.print("start it with:", highlight=False)
    ctx.console.print(service_file.start_hint, markup=False, highlight=False, soft_wrap=True)
    return 0
