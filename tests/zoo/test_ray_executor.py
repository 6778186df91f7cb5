"""``zoo bench --executor ray`` on a real Ray cluster of two nodes on this host (``ray.cluster_utils.Cluster``: a
head and a worker node of 1 CPU each, no dashboard; no mocks of Ray).

The cells' models come from the fake plugin of ``test_bench_cells.py``, installed as a real distribution on the
workers' ``PYTHONPATH`` through a Ray ``runtime_env``, whose ``TMPDIR`` is also the only folder the workers may
use: the driver's output folder is never named to them, so a grid that ends complete with its files in ``out``
shows that no shared filesystem was assumed.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.zoo.test_bench_cells import CONFIG, FAKE_MODELS
from zoo import api
from zoo.bench.grid import make_plan
from zoo.bench.records import read_json
from zoo.bench.runner import LocalExecutor, make_executor, run_benchmark
from zoo.errors import OptionError, UnknownNameError

# Ray advertises every node on the host's interface address unless this is off (read when ray is imported): with
# it, the head, the worker node, the workers and the driver all use 127.0.0.1 (Ray's own loopback mode)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
try:
    import ray
except ImportError:  # the optional extra: pip install 'segzoo[ray]'
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install 'segzoo[ray]')")
THREADS = "1"  # one thread per cell on both executors: equal threads, equal (deterministic CPU) records


def test_executor_names_and_addresses_are_checked():
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(UnknownNameError, match="executor 'dask'.*local, ray"):
        make_executor("dask")
    with pytest.raises(OptionError, match="--ray-address auto needs --executor ray"):
        make_executor("local", address="auto")


def test_without_ray_the_executor_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when the extra is not installed
    with pytest.raises(OptionError, match=r"--executor ray needs Ray.*pip install 'segzoo\[ray\]'") as info:
        make_executor("ray")
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-node Ray cluster whose workers see the fake plugin and write only under their own ``TMPDIR``."""
    if ray is None:
        pytest.skip("Ray is not installed (pip install 'segzoo[ray]')")
    from ray.cluster_utils import Cluster

    site = tmp_path_factory.mktemp("site")
    info = site / "zoo_fakes-0.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-fakes\nVersion: 0.3.1\n")
    (info / "entry_points.txt").write_text("[segzoo]\nfakes = zoo_bench_fakes\n")
    (site / "zoo_bench_fakes.py").write_text(FAKE_MODELS)
    worker_tmp = tmp_path_factory.mktemp("worker-tmp")
    path = os.pathsep.join([str(site), str(Path.cwd())])
    sys.path.insert(0, str(site))
    node = {"num_cpus": 1}
    nodes = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False,
                                                          "_system_config": {"worker_niceness": 0}})
    nodes.add_node(**node)
    ray.init(address=nodes.address, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "TMPDIR": str(worker_tmp)}})
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
        assert len(alive) == 2
        assert {n["NodeManagerAddress"] for n in alive} == {"127.0.0.1"}, "the test cluster must touch only 127.0.0.1"
        yield {"site": site, "tmp": worker_tmp, "pythonpath": path}
    finally:
        ray.shutdown()
        nodes.shutdown()
        sys.path.remove(str(site))
        sys.modules.pop("zoo_bench_fakes", None)


def _plan(models: str, *, seeds: str = "0", model_options: dict | None = None):
    config = {**CONFIG, "model": dict(model_options or {})}
    return make_plan(models=models, seeds=seeds, profile="quick", config=config, registries=api.load_registry())


def _env(cluster) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS}
    env["PYTHONPATH"] = cluster["pythonpath"]
    return env


def _metrics(out: Path) -> pd.DataFrame:
    runs = pd.read_csv(out / "runs.csv")
    columns = ["cell_id", "status", "dice", "dice_pooled", "epochs_done", "steps_done", "best_epoch",
               "n_parameters"]
    return runs[columns].sort_values("cell_id").reset_index(drop=True)


def _ray(**options):
    from zoo.bench.ray_executor import RayExecutor

    return RayExecutor(**options)


@needs_ray
def test_a_ray_grid_records_what_the_local_executor_records(tmp_path, cluster):
    plan = _plan("tiny-ok", seeds="0,1")
    started = time.perf_counter()
    local = run_benchmark(plan, tmp_path / "local", env=_env(cluster), render=False, executor=LocalExecutor())
    local_s = time.perf_counter() - started
    started = time.perf_counter()
    remote = run_benchmark(plan, tmp_path / "ray", env=_env(cluster), render=False, executor=_ray())
    ray_s = time.perf_counter() - started
    print(f"\n2 cells: local executor {local_s:.1f} s, ray executor {ray_s:.1f} s")
    assert local.ok and remote.ok and sorted(remote.ran) == sorted(local.ran)
    pd.testing.assert_frame_equal(_metrics(tmp_path / "ray"), _metrics(tmp_path / "local"))

    cell = tmp_path / "ray" / "cells" / "shapes__tiny-ok__s0"
    record = read_json(cell / "record.json")
    # the cell ran in the worker's temporary folder, and the driver wrote its files into the output folder,
    # with the record naming the weights where they now are
    ran_in = (cell / "cell.log").read_text().split("bench-cell ", 1)[1].split()[0]
    assert Path(ran_in).is_relative_to(cluster["tmp"]) and not Path(ran_in).exists()
    assert record["checkpoints"] == {"best": str(cell / "run" / "best.safetensors")}
    assert {p.name for p in (cell / "run").glob("*.safetensors")} == {"best.safetensors"}
    assert (cell / "per_image.csv").is_file() and (cell / "samples.npz").is_file()
    assert str(cluster["tmp"]) not in (cell / "run" / "result.json").read_text()


@needs_ray
def test_a_crashing_cell_is_a_failed_record_the_rest_finish_and_a_rerun_resumes(tmp_path, cluster):
    plan = _plan("sigkill-net,tiny-ok")
    out = tmp_path / "bench"
    summary = run_benchmark(plan, out, env=_env(cluster), render=False, keep_checkpoints="none", executor=_ray())
    status = {row.model: row.status for row in summary.rows}
    assert status == {"sigkill-net": "failed", "tiny-ok": "ok"}
    runs = pd.read_csv(out / "runs.csv").set_index("model")
    assert "SIGKILL" in runs.loc["sigkill-net", "error"]
    # --drop-weights: nothing was shipped back or written
    assert not list(out.glob("cells/*/run/*.safetensors")) and not list(out.glob("cells/*/run/*.pt"))

    again = run_benchmark(plan, out, env=_env(cluster), render=False, executor=_ray())
    assert again.ran == [] and sorted(again.skipped) == sorted(c.cell_id for c in plan.cells)


def _cell_processes(root: Path) -> list[tuple[int, int]]:
    """``(pid, parent pid)`` of every ``zoo bench-cell`` process running a cell under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if b"bench-cell" in argv and any(str(root).encode() in a for a in argv):
            found.append((int(entry.name), int(stat.rsplit(")", 1)[1].split()[1])))
    return found


def _kill_first_worker(root: Path, killed: list[int]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not killed:
        for _, worker in _cell_processes(root):
            os.kill(worker, signal.SIGKILL)  # the Ray worker: its cell dies with it (PR_SET_PDEATHSIG)
            killed.append(worker)
            return
        time.sleep(0.2)


@needs_ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the Ray worker through /proc")
@pytest.mark.parametrize("retries, status", [(1, "ok"), (0, "failed")])
def test_a_cell_whose_worker_dies_is_retried_then_recorded_as_failed(tmp_path, cluster, retries, status):
    plan = _plan("tiny-ok", model_options={"delay": 0.3})
    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_worker, args=(cluster["tmp"], killed), daemon=True)
    killer.start()
    summary = run_benchmark(plan, tmp_path / "bench", env=_env(cluster), render=False,
                            executor=_ray(max_retries=retries))
    killer.join()
    assert killed, "no cell process appeared to kill"
    assert [row.status for row in summary.rows] == [status]
    if status == "failed":
        error = read_json(tmp_path / "bench" / "cells" / "shapes__tiny-ok__s0" / "record.json")["error"]
        assert "lost after 0 retries" in error and "Worker" in error


_DRIVER = """
import sys
from pathlib import Path
from tests.zoo.test_ray_executor import _env_for, _plan
from zoo.bench.ray_executor import RayExecutor
from zoo.bench.runner import run_benchmark

address, out, pythonpath, tmp = sys.argv[1:]
sys.path.insert(0, pythonpath.split(":")[0])
env = {"env_vars": {"PYTHONPATH": pythonpath, "TMPDIR": tmp}}
run_benchmark(_plan("tiny-ok", seeds="0,1,2", model_options={"delay": 0.2}), Path(out), render=False,
              env=_env_for(pythonpath), executor=RayExecutor(address=address, init_options={"runtime_env": env}))
"""


def _env_for(pythonpath: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS, "PYTHONPATH": pythonpath}


@needs_ray
def test_a_killed_driver_loses_only_the_cells_in_flight_and_a_rerun_completes(tmp_path, cluster):
    import subprocess

    out = tmp_path / "bench"
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, ray.get_runtime_context().gcs_address, str(out),
                               cluster["pythonpath"], str(cluster["tmp"])], env=_env_for(cluster["pythonpath"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(out.glob("cells/*/record.json")):
        assert driver.poll() is None, "the driver ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    recorded = {p.parent.name for p in out.glob("cells/*/record.json")}
    assert len(recorded) < 3  # killed at the first record: with two 1-CPU nodes the third cell was not done

    plan = _plan("tiny-ok", seeds="0,1,2", model_options={"delay": 0.2})
    summary = run_benchmark(plan, out, env=_env(cluster), render=False, executor=_ray())
    assert summary.ok and len(summary.rows) == 3
    assert set(summary.skipped) == recorded and set(summary.ran) == {c.cell_id for c in plan.cells} - recorded
