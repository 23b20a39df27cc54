"""CLI misuse and a hostile environment: one-line errors and exit codes by cause, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bouncetag.cli import main


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_labels_export_to_a_folder_is_an_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    assert main(["labels", "export", str(tmp_path)]) == 7
    assert "cannot write CSV" in _one_error_line(capsys.readouterr().err)


def test_labels_import_of_a_binary_file_is_an_error_not_a_traceback(
    tmp_path: Path, capsys
) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["labels", "import", str(csv_file)]) == 7
    line = _one_error_line(capsys.readouterr().err)
    assert str(csv_file) in line and "cannot read CSV" in line


def test_unusable_bouncetag_home_is_a_state_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("BOUNCETAG_HOME", str(not_a_folder))
    assert main(["status"]) == 6
    assert "cannot create folder" in _one_error_line(capsys.readouterr().err)
