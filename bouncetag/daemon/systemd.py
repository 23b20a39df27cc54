"""Service files that run `bouncetag watch --headless` at login: systemd unit or launchd plist."""

from __future__ import annotations

import os
import plistlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

UNIT_NAME = "bouncetag.service"
LAUNCHD_LABEL = "io.bouncetag.watch"


@dataclass(frozen=True)
class ServiceFile:
    """A service definition ready to write: where it goes, what it says, how to start it."""

    kind: str  # "systemd" | "launchd"
    path: Path
    text: str
    start_hint: str


def default_kind() -> str:
    """ "launchd" on macOS, "systemd" elsewhere."""
    return "launchd" if sys.platform == "darwin" else "systemd"


def watch_command(
    folders: list[Path], config_path: Path | None, python: str | None = None
) -> list[str]:
    """The argv the service runs: this interpreter, `-m bouncetag`, `watch --headless`."""
    argv = [python or sys.executable, "-m", "bouncetag"]
    if config_path is not None:
        argv += ["-c", str(Path(config_path).expanduser().resolve())]
    argv += ["watch", "--headless", *(str(Path(f).expanduser().resolve()) for f in folders)]
    return argv


def systemd_unit(argv: list[str], env: dict[str, str] | None = None) -> str:
    """A systemd user unit that restarts the daemon if it dies (state survives in the store)."""
    lines = [
        "[Unit]",
        "Description=bouncetag: tag DAW bounces with BPM, transcript and genre",
        "After=default.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={shlex.join(argv)}",
        "Restart=on-failure",
        "RestartSec=5",
        # SIGTERM lets the current file finish or be handed back to the store.
        "KillSignal=SIGTERM",
        "TimeoutStopSec=60",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    for key, value in sorted((env or {}).items()):
        lines.append(f"Environment={key}={shlex.quote(value)}")
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def launchd_plist(argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> str:
    """A launchd agent plist that keeps the daemon running after login."""
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": argv,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "StandardOutPath": str(log_dir / "watch.out.jsonl"),
        "StandardErrorPath": str(log_dir / "watch.err.log"),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", **(env or {})},
    }
    return plistlib.dumps(plist).decode()


def build_service_file(
    kind: str,
    folders: list[Path],
    config_path: Path | None,
    log_dir: Path,
    dest: Path | None = None,
) -> ServiceFile:
    """Render the service file for this machine.

    Args:
        kind: "systemd" or "launchd".
        folders: folders given to `watch` (may be empty when the config lists them).
        config_path: the config file to pass with -c, if any.
        log_dir: where launchd sends stdout/stderr.
        dest: where to write; default ~/.config/systemd/user/ or ~/Library/LaunchAgents/.

    Returns:
        The ServiceFile (not yet written).

    Raises:
        ValueError: unknown kind.
    """
    argv = watch_command(folders, config_path)
    env = (
        {"BOUNCETAG_HOME": os.environ["BOUNCETAG_HOME"]} if os.environ.get("BOUNCETAG_HOME") else {}
    )
    if kind == "systemd":
        config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        path = dest or config_home / "systemd" / "user" / UNIT_NAME
        if path.is_dir() or (dest is not None and not path.suffix):
            path = path / UNIT_NAME
        hint = (
            "systemctl --user daemon-reload\n"
            f"systemctl --user enable --now {path.name}\n"
            f"journalctl --user -u {path.name} -f    # follow its JSON event lines"
        )
        return ServiceFile(kind, path, systemd_unit(argv, env), hint)
    if kind == "launchd":
        path = dest or Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        if path.is_dir() or (dest is not None and not path.suffix):
            path = path / f"{LAUNCHD_LABEL}.plist"
        hint = (
            f"launchctl load -w {shlex.quote(str(path))}\n"
            f"tail -f {shlex.quote(str(log_dir / 'watch.out.jsonl'))}"
        )
        return ServiceFile(kind, path, launchd_plist(argv, log_dir, env), hint)
    raise ValueError(f"unknown service kind {kind!r} (systemd or launchd)")
