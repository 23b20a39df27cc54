"""Genre model registry: versioned folders under the data dir and an atomic `current` pointer."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bouncetag.errors import ModelMissingError

if TYPE_CHECKING:
    from bouncetag.config import Config
    from bouncetag.paths import AppPaths

CURRENT_FILE = "current"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ModelInfo:
    """One installed model, as `bouncetag model list` shows it."""

    version: str
    path: Path
    created_at: float
    labels: tuple[str, ...]
    feature_names: tuple[str, ...]
    metrics: dict[str, Any]
    promoted: bool  # was it promoted when trained (a rejected candidate is kept too)
    current: bool


def _write_current(paths: AppPaths, version: str) -> None:
    """Point `current` at a version atomically: write a temp file, then rename over."""
    models = paths.models_dir
    models.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=models, prefix=".current-", text=True)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, models / CURRENT_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_version(paths: AppPaths) -> str | None:
    """The version the `current` pointer names, or None when no model was promoted yet."""
    try:
        version = (paths.models_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not version or not (paths.models_dir / version).is_dir():
        return None
    return version


def current_model_dir(paths: AppPaths, config: Config | None = None) -> Path | None:
    """The folder of the model analysis should use, or None when there is none.

    `genre.model` in the config overrides the pointer: a folder path, or a version name.
    """
    if config is not None and config.genre.model:
        override = Path(config.genre.model).expanduser()
        if override.is_dir():
            return override
        candidate = paths.models_dir / config.genre.model
        return candidate if candidate.is_dir() else None
    version = current_version(paths)
    return paths.models_dir / version if version else None


def new_version_name(paths: AppPaths, now: float | None = None) -> str:
    """A fresh, sortable version name like 20261125-140312 (suffixed if it is taken)."""
    base = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    name, n = base, 1
    while (paths.models_dir / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def list_models(paths: AppPaths) -> list[ModelInfo]:
    """Every model folder with a readable model.json, oldest first."""
    from bouncetag.classifier.model import read_meta

    if not paths.models_dir.is_dir():
        return []
    current = current_version(paths)
    out = []
    for folder in sorted(p for p in paths.models_dir.iterdir() if p.is_dir()):
        try:
            meta = read_meta(folder)
        except ModelMissingError:
            continue
        out.append(
            ModelInfo(
                version=folder.name, path=folder, created_at=meta.created_at,
                labels=meta.config.labels, feature_names=meta.config.feature_names,
                metrics=meta.metrics, promoted=bool(meta.data_summary.get("promoted", False)),
                current=folder.name == current,
            )
        )
    return sorted(out, key=lambda m: (m.created_at, m.version))


def use_model(paths: AppPaths, version: str) -> Path:
    """Make an installed version current (roll back or forward).

    Returns:
        The model folder now current.

    Raises:
        ModelMissingError: no such version is installed.
    """
    from bouncetag.classifier.model import read_meta

    if not _VERSION_RE.match(version):
        raise ModelMissingError(f"not a model version: {version!r}")
    folder = paths.models_dir / version
    if not folder.is_dir():
        known = ", ".join(m.version for m in list_models(paths)) or "none"
        raise ModelMissingError(f"no model version {version!r} (installed: {known})")
    read_meta(folder)  # refuse a broken folder before pointing at it
    _write_current(paths, version)
    return folder


def promote(paths: AppPaths, model_dir: Path) -> str:
    """Install a model folder (moving it under the models dir if it lives elsewhere) and make it
    current. The previous models stay, so `use_model` can roll back.

    Returns:
        The version now current.

    Raises:
        ModelMissingError: `model_dir` holds no readable model.
    """
    from bouncetag.classifier.model import read_meta

    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    if model_dir.resolve().parent != paths.models_dir.resolve():
        version = meta.version if _VERSION_RE.match(meta.version) else new_version_name(paths)
        target = paths.models_dir / version
        if target.exists():
            version = new_version_name(paths)
            target = paths.models_dir / version
        shutil.copytree(model_dir, target)
        model_dir = target
    _write_current(paths, model_dir.name)
    return model_dir.name
