"""Typed cell records: strict keys, the schema-0 migration, and the committed grid re-rendered byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zoo.bench.records import SCHEMA_VERSION, CellRecord, RecordError, read_record, read_records, write_record
from zoo.bench.report import TABLE_FILES, write_leaderboard
from zoo.bench.tables import BenchmarkRow

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "results" / "cpu-grid"


def _record(**values) -> CellRecord:
    return CellRecord(cell_id="shapes__unet__s0", dataset="shapes", model="unet", variant="unet", seed=0, **values)


def test_a_record_round_trips_through_its_file(tmp_path):
    record = _record(status="ok", metrics={"dice": 0.5, "dice_pooled": float("nan")}, history=[{"epoch": 1}])
    write_record(tmp_path, record)
    data = json.loads((tmp_path / "record.json").read_text())
    assert data["schema"] == SCHEMA_VERSION and data["metrics"]["dice_pooled"] is None  # NaN as null
    back = read_record(tmp_path)
    assert back.directory == tmp_path and back.metrics == {"dice": 0.5, "dice_pooled": None}
    assert back.to_json() == record.to_json()


def test_an_unknown_or_missing_key_is_an_error_naming_it():
    data = _record().to_json()
    with pytest.raises(RecordError, match=r"unknown key\(s\) \['dcie'\]"):
        CellRecord.from_json({**data, "dcie": 0.3})
    del data["gmacs"]
    with pytest.raises(RecordError, match=r"missing key\(s\) \['gmacs'\]"):
        CellRecord.from_json(data)
    with pytest.raises(RecordError, match="schema 99"):
        CellRecord.from_json({**_record().to_json(), "schema": 99})


def test_update_refuses_a_misspelled_field():
    record = _record()
    record.update(status="ok", gmacs=1.5)
    assert (record.status, record.gmacs) == ("ok", 1.5)
    with pytest.raises(RecordError, match="'infer_image_per_s'"):
        record.update(infer_image_per_s=3.0)


def test_records_written_before_the_schema_migrate(tmp_path):
    old = {"cell_id": "c", "dataset": "d", "model": "m", "variant": "m", "seed": 1, "status": "ok",
           "metrics": {"dice": 0.7}, "_dir": "/elsewhere"}
    (tmp_path / "cells" / "c").mkdir(parents=True)
    (tmp_path / "cells" / "c" / "record.json").write_text(json.dumps(old))
    (record,) = read_records([tmp_path])
    assert record.schema == SCHEMA_VERSION and record.metrics == {"dice": 0.7} and record.gmacs is None
    assert record.directory == tmp_path / "cells" / "c"  # where it was read, not the stale `_dir`
    assert BenchmarkRow.from_record(record).metrics == {"dice": 0.7}


def test_a_bad_record_is_reported_and_the_others_still_load(tmp_path, caplog):
    for cell_id, extra in (("good", {}), ("bad", {"bogus": 1})):
        (tmp_path / "cells" / cell_id).mkdir(parents=True)
        data = {**CellRecord(cell_id=cell_id, dataset="d", model="m", variant="m", seed=0).to_json(), **extra}
        (tmp_path / "cells" / cell_id / "record.json").write_text(json.dumps(data))
    assert [r.cell_id for r in read_records([tmp_path])] == ["good"]
    assert "bad" in caplog.text and "bogus" in caplog.text


# every committed results folder whose tables are final (a folder still being filled is added when it is)
COMMITTED = ["cpu-grid", "drive-unet-planned", "recipe-comparison/planned", "recipe-comparison/resize",
             "recipe-comparison/planned-30tflops-250steps",
             "recipe-comparison/planned-30tflops", "recipe-comparison/resize-30tflops",
             "recipe-comparison/planned-135tflops", "recipe-comparison/planned-v2",
             "recipe-comparison/planned-v2-30tflops", "planned-grid",
             "drive-reproduction"]  # skipped until its cells are committed (stage 3 of results/planned-grid.sh)


@pytest.mark.parametrize("name", COMMITTED)
def test_the_committed_results_are_rerendered_byte_for_byte(tmp_path, name):
    folder = ROOT / "results" / name
    if not (folder / "cells").is_dir() or not (folder / "leaderboard.csv").is_file():
        pytest.skip(f"results/{name} is not in this checkout")
    written = write_leaderboard([folder], tmp_path, html=False)
    for png in sorted((folder / "plots").glob("*.png")):
        drawn = tmp_path / "plots" / png.name
        if not drawn.exists():  # a qualitative grid needs the cells' samples.npz, which is not committed
            assert png.name.startswith("qualitative_"), f"results/{name}/plots/{png.name} was not drawn again"
            continue
        assert drawn.read_bytes() == png.read_bytes(), (
            f"results/{name}/plots/{png.name} differs from the committed one: run 'zoo leaderboard results/{name}'")
    for key, path in written.items():
        if key not in TABLE_FILES:  # the plots, compared above
            continue
        committed = folder / TABLE_FILES[key]
        if key == "per_image":  # not committed (large): rebuilt from the cells' own files
            assert path.stat().st_size > 0
            continue
        assert path.read_bytes() == committed.read_bytes(), (
            f"results/{name}/{TABLE_FILES[key]} differs from the committed one: run 'zoo leaderboard results/{name}'")
    shutil.rmtree(tmp_path)


@pytest.mark.skipif(not (GRID / "cells").is_dir(), reason="results/cpu-grid is not in this checkout")
def test_one_model_on_two_datasets_renders_without_pairs(tmp_path):
    """A folder with a single model (a recipe comparison, a reproduction run) has no pairs to separate."""
    for cell in ("shapes__unet__s0", "shapes__unet__s1", "isbi2012_em__unet__s0", "isbi2012_em__unet__s1"):
        shutil.copytree(GRID / "cells" / cell, tmp_path / "in" / "cells" / cell)
    written = write_leaderboard([tmp_path / "in"], tmp_path / "out", plots=False)
    text = written["markdown"].read_text()
    assert "| 1 | unet |" in text and "separate no pair" not in text
