"""The speed suite's bookkeeping: each benchmark reports rows; the session writes the table in README.md.

A row is one measured figure against its target (or an informational figure without one). Rows are merged by
id into ``benchmarks/results.json`` (so running one file refreshes only its rows) and rendered between the
markers of ``benchmarks/README.md`` with the machine, versions, allocator, load and date.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
README = HERE / "README.md"
START, END = "<!-- speed-table:start -->", "<!-- speed-table:end -->"


@dataclass
class Row:
    """One figure of the suite.

    Attributes:
        id: stable key (``harness/train-throughput``).
        what: one line describing the measurement.
        measured: the figure (a ratio, seconds, images/s).
        unit: ``x``, ``s``, ``%``, ``img/s``...
        target: e.g. ``>= 0.95``; empty for informational rows.
        note: how it was measured, and why a target is missed.
    """

    id: str
    what: str
    measured: float
    unit: str = "x"
    target: str = ""
    note: str = ""
    load: float | None = None

    def status(self) -> str:
        if not self.target:
            return "info"
        op, value = self.target.split()
        bound = float(value)
        met = self.measured >= bound if op == ">=" else self.measured <= bound
        if met:
            return "met"
        gap = (bound / self.measured - 1) if op == ">=" else (self.measured / bound - 1)
        return f"missed by {gap:.0%}"


_ROWS: list[Row] = []


def _interleaved(fns: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Call each function ``rounds`` times, alternating, and return the median of what each returned.

    On a shared machine background load comes and goes; alternating the candidates spreads it over all of them,
    and the median drops the rounds that a burst of load hit.
    """
    values: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            values[name].append(fn())
    return {name: statistics.median(v) for name, v in values.items()}


@pytest.fixture(scope="session")
def interleaved() -> Callable[[dict[str, Callable[[], float]], int], dict[str, float]]:
    """See :func:`_interleaved`."""
    return _interleaved


@pytest.fixture(scope="session")
def report() -> Callable[..., Row]:
    """``report(id, what, measured, unit=..., target=..., note=...)`` adds a row to the table."""

    def add(id: str, what: str, measured: float, **kwargs: Any) -> Row:
        row = Row(id=id, what=what, measured=float(measured), load=round(os.getloadavg()[0], 2), **kwargs)
        _ROWS.append(row)
        _flush()  # after every row, so an interrupted run keeps what it measured
        print(f"\n[{row.status()}] {row.id}: {row.measured:.3g} {row.unit} (target {row.target or '-'}) {row.note}")
        return row

    return add


@pytest.fixture(scope="session", autouse=True)
def _threads() -> Iterator[None]:
    threads = os.environ.get("ZOO_BENCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    yield


def _machine() -> dict[str, Any]:
    from zoo.allocator import detect_allocator
    from zoo.precision import cpu_has_native_bf16, device_name

    import torchvision

    return {"cpu": device_name(torch.device("cpu")), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "native_bf16": cpu_has_native_bf16(), "capability": torch.backends.cpu.get_cpu_capability(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "allocator": detect_allocator(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def render(data: dict[str, Any]) -> str:
    """The markdown between the README markers."""
    m = data["machine"]
    lines = [
        f"Last run: {m['date']} on {m['cpu']} ({m['cores']} cores, {m['threads']} torch threads, "
        f"{m['capability']}, native bf16: {'yes' if m['native_bf16'] else 'no'}"
        + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU") + f"), allocator {m['allocator']}, "
        f"torch {m['torch']}, torchvision {m['torchvision']}, Python {m['python']}. "
        f"Wall time of the last session: {data.get('suite_seconds', 0):.0f} s.",
        "",
        "| id | what | measured | target | status | load | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        row = Row(**r)
        lines.append(f"| `{row.id}` | {row.what} | {_fmt(row.measured)} {row.unit} | {row.target or '-'} | "
                     f"{row.status()} | {row.load if row.load is not None else '-'} | {row.note} |")
    return "\n".join(lines)


_STARTED = time.perf_counter()


def _flush() -> None:
    """Merge this session's rows into ``results.json`` and re-render the README table."""
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"rows": []}
    fresh = {r.id for r in _ROWS}
    rows = [r for r in old.get("rows", []) if r["id"] not in fresh] + [asdict(r) for r in _ROWS]
    order = ["harness", "unet", "models", "pipeline", "metrics", "fast-path", "allocator", "bench"]
    rows.sort(key=lambda r: (order.index(r["id"].split("/")[0]) if r["id"].split("/")[0] in order else 99))
    data = {"machine": _machine(), "rows": rows, "suite_seconds": time.perf_counter() - _STARTED}
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    text = README.read_text() if README.exists() else f"# Speed suite\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        README.write_text(head + START + "\n" + render(data) + "\n" + END + rest.split(END, 1)[1])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _ROWS:
        _flush()
