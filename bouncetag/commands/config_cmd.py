"""`bouncetag check-config [FILE]`: validate a config file and name any bad key by its path."""

from __future__ import annotations

import argparse
from pathlib import Path

from bouncetag.commands import Context


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("check-config", help="validate a config file")
    p.add_argument("file", nargs="?", type=Path, help="config file (default: the user config)")
    p.set_defaults(handler=run, skip_config_load=True)


def run(ctx: Context, args: argparse.Namespace) -> int:
    from bouncetag.config import load_config

    path = args.file or ctx.config_path
    if path is None:
        ctx.console.print(
            f"no config file at {ctx.paths.config_file}; the defaults are in use "
            "(copy config.example.toml there to change them)"
        )
        return 0
    config = load_config(path)  # raises ConfigError naming the key
    if config.train.schedule:
        from bouncetag.trainer.schedule import parse_cron

        parse_cron(config.train.schedule)  # the daemon would only find out at start-up
    ctx.console.print(f"{path}: ok")
    return 0
