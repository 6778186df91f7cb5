"""Property-based tests of benchmark records: a damaged or hand-edited ``record.json`` next to a good one.

The property: ``read_records`` skips a record it cannot trust (naming the file in a warning) and the leaderboard
is rebuilt from the rest, or the command fails with one ``ZooError`` line; never a raw ``KeyError`` or pandas
error from deep inside the tables. The seed records are two real cells of ``results/cpu-grid``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.errors import ZooError

from tests.properties.conftest import counted

GRID = Path(__file__).resolve().parents[2] / "results" / "cpu-grid" / "cells"
CELLS = ("shapes__unet__s0", "shapes__unet__s1")
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=5)


@pytest.fixture(scope="module")
def seed_record() -> dict:
    path = GRID / CELLS[1] / "record.json"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    return json.loads(path.read_text())


@st.composite
def damaged(draw: st.DrawFn, record: dict) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "field", "drop", "extra", "metric", "top", "garbage", "schema"]))
    data = dict(record)
    if kind == "field":
        data[draw(st.sampled_from(sorted(data)))] = draw(JSON_VALUES)
    elif kind == "drop":
        data.pop(draw(st.sampled_from(sorted(data))))
    elif kind == "extra":
        data[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    elif kind == "metric":
        data["metrics"] = {**data["metrics"], draw(st.sampled_from(sorted(data["metrics"]) + ["new"])):
                           draw(st.one_of(st.floats(), st.none(), st.integers(-(2**70), 2**70)))}
    elif kind == "top":
        return json.dumps(draw(JSON_VALUES)).encode()
    elif kind == "garbage":
        return draw(st.binary(max_size=40))
    else:
        data["schema"] = draw(st.integers(-3, 99))
    return json.dumps(data).encode()


@settings(max_examples=max(6, settings.default.max_examples // 6))  # each example rebuilds a leaderboard
@given(data=st.data())
@counted("bench records (record.json)")
def test_a_damaged_record_is_skipped_or_one_line_and_the_leaderboard_still_renders(data, seed_record,
                                                                                  tmp_path_factory):
    from zoo.bench.records import read_records
    from zoo.bench.report import write_leaderboard

    out = tmp_path_factory.mktemp("grid")
    for cell in CELLS:
        (out / "cells" / cell).mkdir(parents=True)
        for name in ("record.json", "per_image.csv", "cell.json"):
            if (GRID / cell / name).is_file():
                shutil.copy(GRID / cell / name, out / "cells" / cell / name)
    (out / "cells" / CELLS[1] / "record.json").write_bytes(data.draw(damaged(seed_record)))
    records = read_records([out])
    assert CELLS[0] in [r.cell_id for r in records]
    try:
        write_leaderboard([out], out / "board", plots=False, html=False)
    except ZooError as exc:
        assert "\n" not in str(exc) and str(exc), repr(str(exc))
