"""CLI subcommands, one module each; `bouncetag.cli` wires them up and maps errors to exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bouncetag.config import Config
from bouncetag.errors import BounceTagError
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


def failure_exit_code(failures: list[BounceTagError], total: int) -> int:
    """The exit code for a run over `total` files of which `failures` failed.

    Returns:
        0 when none failed; the failures' own exit code (3 undecodable, 4 tag write refused, ...)
        when every file failed for the same kind of reason; otherwise 1 (some files failed).
    """
    if not failures:
        return 0
    codes = {exc.exit_code for exc in failures}
    if len(failures) == total and len(codes) == 1:
        return codes.pop()
    return 1
