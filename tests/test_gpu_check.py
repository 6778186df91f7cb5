"""benchmarks/gpu_check.py: its dry run on the CPU passes, so the GPU validation script keeps up with the code.

On a machine with CUDA the same test runs the real checks (a few minutes): every check must pass or skip.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
def test_gpu_check_dry_run_passes_and_names_every_check(tmp_path, capsys):
    gpu_check = _load()
    out = tmp_path / "gpu.json"
    code = gpu_check.main(["--json", str(out)] if torch.cuda.is_available() else ["--dry-run", "--json", str(out)])
    results = json.loads(out.read_text())
    assert code == 0, [c for c in results["checks"] if c["status"] == "FAIL"]
    names = [c["check"] for c in results["checks"]]
    assert names == [c.__name__.removeprefix("check_") for c in gpu_check.CHECKS]
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith(("PASS ", "SKIP ")) for line in lines) == len(names)
    if not torch.cuda.is_available():
        status = {c["check"]: c["status"] for c in results["checks"]}
        assert {n for n, s in status.items() if s == "PASS"} == {
            "every_precision_trains", "channels_last_matches", "quick_bench_every_model", "timing_is_synchronised"}
        assert results["environment"]["dry_run"] is True


def test_gpu_check_refuses_to_run_without_a_gpu_unless_dry(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert _load().main([]) == 2
    assert "--dry-run" in capsys.readouterr().err
