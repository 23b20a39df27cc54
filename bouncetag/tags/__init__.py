"""Tag reading and safe tag writing for every format a DAW exports, with provenance and undo."""

from __future__ import annotations

from bouncetag.tags.mapping import FIELD_TABLE, FieldKeys
from bouncetag.tags.writer import (
    TEMP_SUFFIX,
    FieldChange,
    TagPlan,
    TagSnapshot,
    TagWriteReport,
    check_writable,
    clean_stale_temps,
    format_plan,
    plan_write,
    read_file_bpm,
    read_tags,
    temp_path_for,
    undo,
    undo_last,
    write_analysis,
)

__all__ = [
    "FIELD_TABLE", "TEMP_SUFFIX", "FieldChange", "FieldKeys", "TagPlan", "TagSnapshot",
    "TagWriteReport",
    "check_writable", "clean_stale_temps", "format_plan", "plan_write", "read_file_bpm", "read_tags",
    "temp_path_for", "undo", "undo_last", "write_analysis",
]
