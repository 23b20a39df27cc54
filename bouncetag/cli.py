"""The `bouncetag` command line: parses arguments, runs a subcommand, reports errors as exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from bouncetag import __version__
from bouncetag.errors import BounceTagError

# Each module in bouncetag.commands exposes `register(subparsers)`; it adds its parser(s) and
# sets `handler=<function(ctx, args) -> int>`. Heavy imports stay inside the handlers so that
# `bouncetag --help` answers at once.
COMMAND_MODULES = (
    "analyze",
    "tags",
    "watch",
    "label",
    "train",
    "config_cmd",
)

EXIT_OK = 0
EXIT_FAILURES = 1  # some files failed, others went through
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bouncetag",
        description="BPM, vocal transcript and genre for every bounce, written into its tags.",
    )
    parser.add_argument("--version", action="version", version=f"bouncetag {__version__}")
    parser.add_argument(
        "-c", "--config", type=Path, default=None,
        help="config file (default: config.toml in the user config dir, if present)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"bouncetag.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from bouncetag.commands import Context
    from bouncetag.config import load_config
    from bouncetag.paths import AppPaths

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    # soft_wrap: an error stays one line (grep-able in logs) even when stderr is not a terminal
    # and rich would otherwise fold it at 80 columns.
    err_console = Console(stderr=True, soft_wrap=True)
    try:
        paths = AppPaths.default()
        config_path = args.config
        if config_path is None and paths.config_file.exists():
            config_path = paths.config_file
        skip_load = getattr(args, "skip_config_load", False)
        config = load_config(None if skip_load else config_path)
        ctx = Context(config, config_path, paths, Console(), err_console)
        return int(args.handler(ctx, args) or 0)
    except BounceTagError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return EXIT_INTERRUPTED


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
