"""CLI subcommands, one module each; `bouncetag.cli` wires them up and maps errors to exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bouncetag.config import Config
from bouncetag.paths import AppPaths

if TYPE_CHECKING:
    from rich.console import Console

    from bouncetag.store import Store


@dataclass(frozen=True)
class Context:
    """What every command gets: the validated config, the folders, and consoles for output."""

    config: Config
    config_path: Path | None
    paths: AppPaths
    console: Console  # stdout: results
    err_console: Console  # stderr: progress, warnings, errors

    def open_store(self) -> Store:
        from bouncetag.store import Store

        self.paths.ensure()
        return Store(self.paths.db_file)
