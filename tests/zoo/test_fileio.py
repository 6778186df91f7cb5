"""The one atomic-write helper: all or nothing, a temporary name per host and process."""

from __future__ import annotations

import os

import pytest

from zoo.fileio import atomic_write, atomic_write_text, temporary_name


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "runs.csv"
    atomic_write_text(path, "old\n")

    def half_then_crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv"]


def test_the_temporary_name_is_hidden_and_this_process_s_own(tmp_path):
    name = temporary_name(tmp_path / "curves.png").name
    assert name.startswith(".curves.") and f".{os.getpid()}." in name and name.endswith(".tmp.png")
    atomic_write_text(tmp_path / "sub" / "a.txt", "x")  # creates the folder
    assert (tmp_path / "sub" / "a.txt").read_text() == "x"
