"""zoo.allocator: detecting the malloc in use, the one-time hint, and the runs.csv column."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from zoo import allocator
from zoo.bench.records import CellRecord
from zoo.bench.tables import RUN_COLUMNS_TAIL, BenchmarkRow, row_dict

GLIBC_MAPS = """\
7f0000000000-7f0000001000 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000002000-7f0000003000 r-xp 00000000 08:01 2 /venv/lib/python3.12/site-packages/torch/lib/libtorch_cpu.so
7f0000004000-7f0000005000 rw-p 00000000 00:00 0 [heap]
"""
TCMALLOC_MAPS = GLIBC_MAPS + (
    "7f0000006000-7f0000007000 r-xp 00000000 08:01 3 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n")
JEMALLOC_MAPS = GLIBC_MAPS + "7f0000008000-7f0000009000 r-xp 00000000 08:01 4 /usr/lib/libjemalloc.so.2\n"


@pytest.fixture
def no_hint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(allocator.HINT_ENV, raising=False)
    monkeypatch.delenv(allocator.NO_HINT_ENV, raising=False)


@pytest.mark.parametrize("text, expected", [(GLIBC_MAPS, "glibc"), (TCMALLOC_MAPS, "tcmalloc"),
                                            (JEMALLOC_MAPS, "jemalloc")])
def test_detect_allocator_reads_the_mapped_libraries(tmp_path, text: str, expected: str) -> None:
    maps = tmp_path / "maps"
    maps.write_text(text)
    assert allocator.detect_allocator(maps) == expected


def test_detect_allocator_without_proc_is_unknown(tmp_path) -> None:
    assert allocator.detect_allocator(tmp_path / "absent") == "unknown"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_detect_allocator_sees_a_real_preload() -> None:
    library = allocator.find_library("tcmalloc")
    if library is None:
        pytest.skip("tcmalloc is not installed (apt-get install libtcmalloc-minimal4)")
    code = "from zoo.allocator import detect_allocator; print(detect_allocator())"
    env = allocator.preload_env("tcmalloc")
    assert env is not None and str(library) in env["LD_PRELOAD"]
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "tcmalloc"
    assert subprocess.run([sys.executable, "-c", code], env=plain, capture_output=True, text=True,
                          check=True).stdout.strip() == "glibc"


def test_hint_shows_once_per_machine(tmp_path, caplog, no_hint_env, monkeypatch) -> None:
    maps = tmp_path / "maps"
    maps.write_text(GLIBC_MAPS)
    with caplog.at_level(logging.WARNING, logger="zoo.allocator"):
        assert allocator.hint_once(cache_dir=tmp_path / "cache", maps=maps)
    assert "LD_PRELOAD" in caplog.text and "glibc" in caplog.text
    assert os.environ[allocator.HINT_ENV] == "1"  # children of this process stay quiet
    monkeypatch.delenv(allocator.HINT_ENV)  # a new process tree on the same machine: the marker keeps it quiet
    caplog.clear()
    assert not allocator.hint_once(cache_dir=tmp_path / "cache", maps=maps)
    assert caplog.text == ""


def test_hint_is_quiet_with_a_fast_allocator_or_when_disabled(tmp_path, no_hint_env, monkeypatch) -> None:
    maps = tmp_path / "maps"
    maps.write_text(TCMALLOC_MAPS)
    assert not allocator.hint_once(cache_dir=tmp_path / "cache", maps=maps)
    monkeypatch.delenv(allocator.HINT_ENV)
    maps.write_text(GLIBC_MAPS)
    monkeypatch.setenv(allocator.NO_HINT_ENV, "1")
    assert not allocator.hint_once(cache_dir=tmp_path / "cache", maps=maps)
    assert not (tmp_path / "cache").exists()


def test_preload_env_keeps_existing_preloads(monkeypatch) -> None:
    library = allocator.find_library("tcmalloc")
    if library is None:
        assert allocator.preload_env("tcmalloc") is None
        return
    env = allocator.preload_env("tcmalloc", {"LD_PRELOAD": "/x/libfoo.so"})
    assert env is not None and env["LD_PRELOAD"] == f"{library}:/x/libfoo.so"
    assert allocator.preload_env("tcmalloc", env)["LD_PRELOAD"] == env["LD_PRELOAD"]  # not added twice


def test_allocator_is_a_runs_csv_column() -> None:
    row = BenchmarkRow.from_record(CellRecord(cell_id="c", dataset="d", model="m", variant="m", seed=0,
                                              status="ok", allocator="tcmalloc"))
    assert "allocator" in RUN_COLUMNS_TAIL and row_dict(row)["allocator"] == "tcmalloc"
