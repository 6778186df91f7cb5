"""Where the wall time of ``zoo bench`` goes: phase timers for every process of a run (speed suite only).

Put this folder first on ``PYTHONPATH`` and set ``ZOO_PHASES_DIR``: Python imports this module at start-up in
the harness, in a fork server and in every ``bench-cell`` process, so the same timers run whichever way cells
start (a fork inherits them from its server). Each process adds its own time to the phase of the innermost
timed function it is in (exclusive time, so phases sum to the process's span) and writes
``ZOO_PHASES_DIR/<pid>.json``: a cell process when ``execute_cell`` returns (a forked cell leaves by
``os._exit``, skipping ``atexit``), any other process at exit. Only functions that exist in every version of
the harness compared by ``benchmarks/bench_timing.py`` are timed; without ``ZOO_PHASES_DIR`` nothing happens.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import json
import os
import time

# (module, attribute, phase); a method is "Class.method"
TIMED = (
    ("zoo.cli", "main", "harness"),
    ("zoo.bench.runner", "write_runs_csv", "writing"),
    ("zoo.bench.runner", "_render", "tables and plots"),
    ("zoo.bench.cell", "launch_cell", "cell start, imports, exit"),
    ("zoo.bench.cell", "execute_cell", "cell setup"),
    ("zoo.bench.cell", "write_record", "writing"),
    ("zoo.bench.cell", "_write_per_image", "writing"),
    ("zoo.bench.cell", "_measure_costs", "costs (GMACs, latency, samples)"),
    ("zoo.training.loop", "_run", "cell setup"),
    ("zoo.training.loop", "_score_test", "test scoring"),
    ("zoo.training.loop", "write_eval_outputs", "writing"),
    ("zoo.training.loop", "_write_log", "writing"),
    ("zoo.training.checkpoints", "RunCheckpoints.save", "writing"),
    ("zoo.engine", "fit", "training steps"),
    ("zoo.engine", "_validate_epoch", "validation"),
)

_totals: dict[str, float] = {}
_spans: dict[str, list[list[float]]] = {}
_stack: list[list] = []  # [phase, started, time spent in callees]


def _timed(fn, phase: str, name: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        wall = time.time()
        _stack.append([phase, started, 0.0])
        try:
            return fn(*args, **kwargs)
        finally:
            _, _, inner = _stack.pop()
            spent = time.perf_counter() - started
            _totals[phase] = _totals.get(phase, 0.0) + spent - inner
            if _stack:
                _stack[-1][2] += spent
            if name in ("launch_cell", "execute_cell", "main"):
                _spans.setdefault(name, []).append([wall, wall + spent])
            if name == "execute_cell":
                _write()
    return wrapper


def _write() -> None:
    path = os.path.join(os.environ["ZOO_PHASES_DIR"], f"{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump({"pid": os.getpid(), "totals": _totals, "spans": _spans}, f)


def _install() -> None:
    import sys

    wrapped = {}
    for module_name, attribute, phase in TIMED:
        module = importlib.import_module(module_name)
        owner, name = module, attribute
        if "." in attribute:
            cls, name = attribute.split(".")
            owner = getattr(module, cls)
        original = getattr(owner, name)
        wrapped[id(original)] = _timed(original, phase, name)
        setattr(owner, name, wrapped[id(original)])
    # modules that imported a timed function by name (``from zoo.engine import fit``) before it was wrapped
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("zoo"):
            for attribute, value in list(vars(module).items()):
                if id(value) in wrapped and callable(value):
                    setattr(module, attribute, wrapped[id(value)])
    atexit.register(lambda: (_spans or _totals) and _write())


if os.environ.get("ZOO_PHASES_DIR"):
    _install()
