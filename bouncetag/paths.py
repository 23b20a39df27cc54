"""Where bouncetag keeps things on disk, from platformdirs; overridable with BOUNCETAG_HOME."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "bouncetag"


@dataclass(frozen=True)
class AppPaths:
    """The folders bouncetag uses. Build with `AppPaths.default()` or point at a temp dir in tests."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @classmethod
    def default(cls) -> AppPaths:
        """Per-user folders from platformdirs, or all under $BOUNCETAG_HOME when it is set.

        BOUNCETAG_HOME exists so tests, CI and the demo never touch the real user folders.
        """
        home = os.environ.get("BOUNCETAG_HOME")
        if home:
            return cls.under(Path(home))
        import platformdirs

        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
            cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
            log_dir=Path(platformdirs.user_log_dir(APP_NAME)),
        )

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        """All folders under one root (tests, demo)."""
        root = Path(root)
        return cls(root / "config", root / "data", root / "cache", root / "logs")

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def db_file(self) -> Path:
        return self.data_dir / "bouncetag.sqlite3"

    @property
    def models_dir(self) -> Path:
        """Genre models: one sub-folder per version, plus a `current` pointer file."""
        return self.data_dir / "models"

    @property
    def feature_cache_dir(self) -> Path:
        return self.cache_dir / "features"

    def ensure(self) -> AppPaths:
        """Create every folder; returns self for chaining.

        Raises:
            StoreError: a folder cannot be created (e.g. BOUNCETAG_HOME points at a file).
        """
        from bouncetag.errors import StoreError

        for folder in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create folder: {exc.strerror}", folder) from None
        return self
