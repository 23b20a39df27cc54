"""Model registry: versions, the atomic current pointer, promotion and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bouncetag import registry
from bouncetag.classifier.model import ModelConfig, ModelMeta, build_head, save_model
from bouncetag.config import Config
from bouncetag.errors import ModelMissingError
from bouncetag.paths import AppPaths


def _model(folder: Path, version: str, created: float) -> Path:
    config = ModelConfig(("spectral",), (4,), ("a", "b"), hidden=4)
    meta = ModelMeta(version=version, config=config, created_at=created,
                     data_summary={"promoted": True}, metrics={"valid": {"macro_f1": 0.5}})
    return save_model(folder, build_head(config, seed=0), meta)


def test_no_model_yet(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path)
    assert registry.current_version(paths) is None
    assert registry.current_model_dir(paths) is None
    assert registry.list_models(paths) == []


def test_promote_use_and_rollback(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path)
    v1 = registry.promote(paths, _model(tmp_path / "elsewhere" / "v1", "v1", 1.0))
    assert v1 == "v1"
    assert registry.current_model_dir(paths) == paths.models_dir / "v1"
    _model(paths.models_dir / "v2", "v2", 2.0)
    assert registry.promote(paths, paths.models_dir / "v2") == "v2"
    assert registry.current_version(paths) == "v2"
    models = registry.list_models(paths)
    assert [m.version for m in models] == ["v1", "v2"]
    assert [m.current for m in models] == [False, True]
    registry.use_model(paths, "v1")
    assert registry.current_version(paths) == "v1"
    assert (paths.models_dir / "v2").is_dir(), "old models are kept"
    with pytest.raises(ModelMissingError, match="v9"):
        registry.use_model(paths, "v9")
    with pytest.raises(ModelMissingError):
        registry.use_model(paths, "../etc")
    assert not list(paths.models_dir.glob(".current-*")), "no temp files left behind"


def test_config_override(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path)
    registry.promote(paths, _model(paths.models_dir / "v1", "v1", 1.0))
    other = _model(tmp_path / "mine", "mine", 3.0)
    config = Config().replace("genre", model=str(other))
    assert registry.current_model_dir(paths, config) == other
    assert registry.current_model_dir(paths, Config().replace("genre", model="v1")) == (
        paths.models_dir / "v1"
    )
    assert registry.current_model_dir(paths, Config().replace("genre", model="nope")) is None


def test_version_names_are_unique(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path)
    first = registry.new_version_name(paths, now=0)
    (paths.models_dir / first).mkdir(parents=True)
    assert registry.new_version_name(paths, now=0) == first + "-2"
