"""Config parsing: defaults, key-path errors, per-folder tempo ranges, check-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from bouncetag.cli import main
from bouncetag.config import Config, load_config, parse_config
from bouncetag.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_example_config_is_valid_and_matches_defaults_for_tempo() -> None:
    config = load_config(REPO / "config.example.toml")
    assert config.tempo.min_bpm == Config().tempo.min_bpm
    assert config.tags.genre_policy == "never"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tempo]\nmin_bpm = "fast"', "tempo.min_bpm: must be a number"),
        ("[tempo]\nmin_bpm = 150\nmax_bpm = 100", "tempo.min_bpm: must be below max_bpm"),
        ("[tags]\ngenre_policy = 'sometimes'", "tags.genre_policy: must be one of"),
        ("[watch]\nfolderz = []", "watch.folderz: unknown setting"),
        ("[transcribe]\nbackend = 'siri'", "transcribe.backend: must be one of"),
        ("[train]\nschedule = 'every night'", "train.schedule: must be a 5-field cron"),
        ("[tempo\n", "not valid TOML"),
        ("[[tempo.folders]]\nmin_bpm = 60.0", "tempo.folders[0].path: required"),
    ],
)
def test_bad_values_name_their_key_path(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_config(toml)


def test_folder_override_picks_deepest_matching_folder(tmp_path: Path) -> None:
    hiphop = tmp_path / "beats" / "hiphop"
    config = parse_config(
        f"""
[tempo]
min_bpm = 60
max_bpm = 180
[[tempo.folders]]
path = "{tmp_path / 'beats'}"
min_bpm = 70
max_bpm = 170
[[tempo.folders]]
path = "{hiphop}"
min_bpm = 60
max_bpm = 100
"""
    )
    assert config.tempo.range_for(hiphop / "a.wav") == (60.0, 100.0)
    assert config.tempo.range_for(tmp_path / "beats" / "x.wav") == (70.0, 170.0)
    assert config.tempo.range_for(tmp_path / "other.wav") == (60.0, 180.0)


def test_check_config_cli_reports_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[tempo]\nmax_bpm = 'x'\n")
    assert main(["check-config", str(bad)]) == 2
    assert "tempo.max_bpm: must be a number" in capsys.readouterr().err
    good = tmp_path / "good.toml"
    good.write_text("[tempo]\nmax_bpm = 170\n")
    assert main(["check-config", str(good)]) == 0
    capsys.readouterr()
    bad_cron = tmp_path / "cron.toml"
    bad_cron.write_text("[train]\nschedule = '99 3 * * *'\n")  # five fields, minute out of range
    assert main(["check-config", str(bad_cron)]) == 2
    assert "train.schedule: not a cron expression" in capsys.readouterr().err


def test_train_options_take_finetune_from_config() -> None:
    from bouncetag.trainer.train import TrainOptions

    config = parse_config("[train]\nfinetune_bert = true\nfinetune_epochs = 2\n")
    options = TrainOptions.from_config(config.train, finetune_bert=None)
    assert options.finetune_bert is True and options.finetune_epochs == 2
    assert TrainOptions.from_config(Config().train).finetune_bert is False
    with pytest.raises(ConfigError, match="train.finetune_epochs"):
        parse_config("[train]\nfinetune_epochs = 0\n")
