"""The genre head: checkpoint round trip, prediction order, and clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bouncetag.classifier.model import (
    GenreModel,
    ModelConfig,
    ModelMeta,
    build_head,
    concat_features,
    read_meta,
    save_model,
)
from bouncetag.errors import ModelMissingError


def _trained_dir(tmp_path: Path) -> Path:
    import torch

    config = ModelConfig(("a", "b"), (3, 2), ("low", "high"), hidden=8, dropout=0.0)
    head = build_head(config, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)  # label depends on the first feature only
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    head.set_standardisation(xt)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(xt), yt).backward()
        opt.step()
    meta = ModelMeta(
        version="v1", config=config, created_at=1.0,
        data_summary={"counts": {"low": 20, "high": 20}}, metrics={"valid": {"macro_f1": 1.0}},
        extractor_versions={"a": "1", "b": "1"},
    )
    return save_model(tmp_path / "v1", head.eval(), meta)


def test_round_trip_predicts_from_features(tmp_path: Path) -> None:
    model = GenreModel.load(_trained_dir(tmp_path))
    assert model.version == "v1"
    assert model.feature_names == ("a", "b")
    assert model.labels == ("low", "high")
    assert model.word2vec_path is None
    high = model.predict({"a": np.array([3.0, 0, 0]), "b": np.zeros(2)}, top_k=2)
    low = model.predict({"a": np.array([-3.0, 0, 0]), "b": np.zeros(2)}, top_k=2)
    assert high.genre == "high" and low.genre == "low"
    assert len(high.top) == 2
    assert abs(sum(p for _, p in high.top) - 1.0) < 1e-5
    assert high.model_version == "v1"
    meta = read_meta(tmp_path / "v1")
    assert meta.data_summary["counts"]["low"] == 20
    assert meta.metrics["valid"]["macro_f1"] == 1.0


def test_missing_feature_and_wrong_dims_are_named(tmp_path: Path) -> None:
    model = GenreModel.load(_trained_dir(tmp_path))
    with pytest.raises(ValueError, match="'b' missing"):
        model.predict({"a": np.zeros(3)})
    with pytest.raises(ValueError, match="'a' has 4 dims"):
        concat_features({"a": np.zeros(4), "b": np.zeros(2)}, ("a", "b"), (3, 2))


def test_missing_model_raises_model_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError):
        GenreModel.load(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "head.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelMissingError, match="unreadable"):
        GenreModel.load(tmp_path / "broken")


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ModelConfig(("a",), (1, 2), ("x", "y"))
    with pytest.raises(ValueError):
        ModelConfig(("a",), (1,), ("x",))
    assert ModelConfig(("a", "b"), (3, 4), ("x", "y")).input_dim == 7


def test_import_is_cheap() -> None:
    import subprocess

    code = (
        "import sys, bouncetag.classifier.model, bouncetag.registry; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_finetuned_bert_folder_travels_with_the_model(tmp_path: Path) -> None:
    import dataclasses

    from bouncetag.classifier.pipeline import Pipeline
    from bouncetag.config import Config

    stock = GenreModel.load(_trained_dir(tmp_path))
    assert stock.bert_path is None and stock.meta.finetuned_bert is None
    assert Pipeline(Config(), stock.model_dir).feature_models.text_config.bert_model == ""

    bert = tmp_path / "tuned-bert"
    bert.mkdir()
    (bert / "config.json").write_text("{}")
    meta = dataclasses.replace(stock.meta, version="v2", finetuned_bert={"sha256": "ab" * 32})
    with pytest.raises(ValueError, match="finetuned_bert"):
        save_model(tmp_path / "bad", stock._head, stock.meta, bert_dir=bert)
    model_dir = save_model(tmp_path / "v2", stock._head, meta, bert_dir=bert)
    assert not bert.exists() and (model_dir / "bert" / "config.json").is_file()
    tuned = GenreModel.load(model_dir)
    assert tuned.bert_path == model_dir / "bert"
    assert read_meta(model_dir).finetuned_bert == {"sha256": "ab" * 32}
    # The analysis pipeline points its BERT extractor at the model's own folder.
    models = Pipeline(Config(), model_dir).feature_models
    assert models.text_config.bert_model == str(model_dir / "bert")
