"""Data-parallel training under torchrun on the CPU (gloo, 2 processes) against a single-process run.

The equality claims need a model without batch norm and a loss that is a mean over pixels (BCE here; a Dice
loss pools over the batch, so the mean of two half-batch Dice losses is not the whole batch's): with plain BN each rank normalises with its own half of the
global batch, so a 2-process run is a (slightly) different computation; ``--sync-bn`` would restore it but torch's
SyncBatchNorm has no CPU kernel. With ``batch_norm=False``, no augmentation, fp32 and deterministic kernels, the
2 ranks together see exactly the images a single process sees per step, DDP averages their gradients, and the
result equals the single-process run up to float summation order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo import distributed
from zoo.checkpoint import load_checkpoint
from zoo.data import make_loader
from zoo.errors import OptionError
from zoo.training import TrainConfig, evaluate_checkpoint, run

RECIPE = dict(model="unet", dataset="shapes", model_options={"width": 8, "batch_norm": False},
              dataset_options={"train_items": 32, "val_items": 7, "test_items": 7},
              image_size=32, epochs=4, batch_size=4, loss="bce", augment="none", device="cpu", precision="fp32",
              deterministic=True, metrics=("dice", "accuracy"), select_metric="accuracy")
CLI = ["train", "--model", "unet", "--dataset", "shapes", "--width", "8", "--batch-norm", "false",
       "--image-size", "32", "--train-items", "32", "--val-items", "7", "--test-items", "7", "--epochs", "4",
       "--batch-size", "4", "--loss", "bce", "--augment", "none", "--device", "cpu", "--precision", "fp32",
       "--deterministic", "--metrics", "dice,accuracy", "--select-metric", "accuracy", "--quiet"]

# Runs zoo's CLI and records every path this rank opened for writing, renamed onto or created (audit hooks see
# Python-level file operations; safetensors writes from Rust, but zoo renames its temporary file into place).
LAUNCHER = '''
import os, sys
log_path = sys.argv[1] + "-" + os.environ.get("RANK", "0") + ".txt"
written = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)):
            written.append(os.fsdecode(args[0]))
    elif event in ("os.rename", "os.mkdir"):
        written.append(os.fsdecode(args[1] if event == "os.rename" else args[0]))
sys.addaudithook(hook)
from zoo.cli import main
code = main(sys.argv[2:])
paths = [os.path.abspath(p) for p in written]
with open(log_path, "w") as f:
    f.write("\\n".join(paths))
sys.exit(code)
'''


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the torchrun ranks run with OMP_NUM_THREADS=1: same kernels, same summation
    yield
    torch.set_num_threads(threads)


def _torchrun(tmp_path: Path, args: list[str], nproc: int = 2) -> tuple[subprocess.CompletedProcess, Path]:
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    audit = tmp_path / f"audit{len(list(tmp_path.glob('audit*')))}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               str(launcher), str(audit), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done, audit


def _written(audit: Path, rank: int, under: Path) -> list[str]:
    paths = Path(f"{audit}-{rank}.txt").read_text().splitlines()
    return [p for p in paths if p.startswith(str(under.resolve()))]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


def _assert_same_run(a, b) -> None:
    """Two RunResults from the same recipe: same losses, validation and test metrics, per-image rows."""
    assert a.status == b.status == "ok"
    assert [h["step"] for h in a.history] == [h["step"] for h in b.history]
    for ha, hb in zip(a.history, b.history):
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-4)
        assert ha["val/accuracy"] == pytest.approx(hb["val/accuracy"], abs=1e-6)
        assert ha["val_loss"] == pytest.approx(hb["val_loss"], rel=1e-5)  # a mean over images either way
    assert a.best_epoch == b.best_epoch
    assert a.test_pooled == pytest.approx(b.test_pooled, abs=1e-6)
    assert [(i, m) for i, m, _ in a.per_image] == [(i, m) for i, m, _ in b.per_image]
    assert [v for *_, v in a.per_image] == pytest.approx([v for *_, v in b.per_image], abs=1e-6, nan_ok=True)


def _result_from(folder: Path):
    import json

    from zoo.training import RunResult

    data = json.loads((folder / "result.json").read_text())
    rows = [tuple(line.split(",")) for line in (folder / "test_per_image.csv").read_text().splitlines()[1:]]
    return RunResult(config=TrainConfig.from_dict(data.pop("config")),
                     **{k: v for k, v in data.items() if k not in ("per_image",)},
                     per_image=[(i, m, float(v)) for i, m, v in rows])


def test_two_processes_match_one_and_only_rank_0_writes(tmp_path, one_thread):
    single = run(TrainConfig(**RECIPE), tmp_path / "one", quiet=True)
    _, audit = _torchrun(tmp_path, [*CLI, "--out", str(tmp_path / "two")])
    double = _result_from(tmp_path / "two")

    assert (double.world_size, double.batch_size_used, double.batch_size_per_process) == (2, 4, 2)
    assert (single.world_size, single.batch_size_used) == (1, 4)
    assert double.steps_done == single.steps_done == 4 * 32 // 4
    _assert_same_run(double, single)
    for name in ("best", "last"):
        for key, value in _weights(tmp_path / "one" / f"{name}.safetensors").items():
            torch.testing.assert_close(_weights(tmp_path / "two" / f"{name}.safetensors")[key], value,
                                       rtol=1e-4, atol=1e-5)
    # the DDP checkpoint is a plain one: no 'module.' prefix, and it scores the same in one process
    assert not any(k.startswith("module.") for k in _weights(tmp_path / "two" / "best.safetensors"))
    rescored = evaluate_checkpoint(tmp_path / "two", device="cpu", precision="fp32", metrics=("dice", "accuracy"))
    assert rescored.pooled == pytest.approx(double.test_pooled, abs=1e-6)
    assert rescored.n_images == 7

    rank0, rank1 = _written(audit, 0, tmp_path / "two"), _written(audit, 1, tmp_path / "two")
    assert rank1 == []
    assert any(p.endswith("best.safetensors") for p in rank0) and any(p.endswith("result.json") for p in rank0)


@pytest.mark.slow
def test_single_process_checkpoint_resumes_under_torchrun(tmp_path, one_thread):
    """The other direction: a run interrupted on one process continues on two and ends where one would."""
    full = run(TrainConfig(**RECIPE), tmp_path / "full", quiet=True)
    partial = run(TrainConfig(**RECIPE), tmp_path / "resumed", quiet=True,
                  on_epoch_end=lambda state, record: state.epoch >= 2)
    assert partial.status == "interrupted" and partial.epochs_done == 2
    done, _ = _torchrun(tmp_path, [*CLI, "--out", str(tmp_path / "resumed"), "--resume"])
    assert "resuming" in done.stderr
    _assert_same_run(_result_from(tmp_path / "resumed"), full)


def test_global_batch_sampler_splits_the_single_process_batches():
    split = [(torch.zeros(1, 4, 4), torch.zeros(4, 4, dtype=torch.int64))] * 10

    class Split(list):
        ids = [str(i) for i in range(10)]

    for seed in (0, 7):
        single = make_loader(Split(split), train=True, batch_size=4, augment="none", seed=seed)
        assert len(single) == 2  # drop_last: 10 items make two full batches
        order = [list(b) for b in
                 torch.utils.data.DataLoader(range(10), batch_size=4, shuffle=True, drop_last=True,
                                             generator=torch.Generator().manual_seed(seed), collate_fn=list)]
        ranks = [list(distributed.GlobalBatchSampler(10, batch_size=4, seed=seed, rank=r, world=2))
                 for r in (0, 1)]
        assert [ranks[0][2 * k:2 * k + 2] + ranks[1][2 * k:2 * k + 2] for k in range(2)] == order
        assert len(distributed.GlobalBatchSampler(10, batch_size=4, seed=seed, rank=1, world=2)) == 4
    with pytest.raises(OptionError, match="divisible"):
        distributed.GlobalBatchSampler(10, batch_size=5, seed=0, rank=0, world=2)
    with pytest.raises(OptionError, match="fewer than the global batch"):
        distributed.GlobalBatchSampler(3, batch_size=4, seed=0, rank=0, world=2)


def test_helpers_are_no_ops_on_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched() and not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    value = torch.tensor(3.0)
    assert distributed.all_reduce_mean(value) is value
    assert distributed.gather_to_main("x") == ["x"] and distributed.broadcast_from_main("y") == "y"
    with distributed.session("cpu") as device:
        assert device == "cpu" and not torch.distributed.is_initialized()
    assert distributed.compact_mask(torch.tensor([[0, 255]])).dtype == torch.uint8
    assert distributed.compact_mask(torch.tensor([[-1, 2]])).dtype == torch.int64


# ----------------------------------------------------------------------------------------------------------------
# Grids across processes: shards running at the same time into one folder, and --devices


def _bench(out: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "zoo", "bench", "--models", "unet", "--seeds", "0,1", "--profile", "quick",
            "--config", str(config), "--out", str(out), *extra]


def _table(out: Path):
    import pandas as pd

    runs = pd.read_csv(out / "runs.csv")
    columns = ["cell_id", "status", "dice", "dice_pooled", "steps_done", "best_epoch"]
    board = pd.read_csv(out / "leaderboard.csv")
    return runs[columns].sort_values("cell_id").reset_index(drop=True), board[["variant", "dice_mean", "n_seeds"]]


@pytest.mark.slow
def test_concurrent_shards_in_one_folder_merge_into_the_unsplit_leaderboard(tmp_path):
    import pandas as pd

    config = tmp_path / "bench.toml"
    config.write_text('[train]\nmetrics = ["dice"]\nepochs = 1\ndevice = "cpu"\nprecision = "fp32"\n\n'
                      '[dataset]\nimage_size = 32\ntrain_items = 8\nval_items = 4\ntest_items = 4\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the unsplit grid, two cells at a time (--devices 2 on the CPU: one core each)
    full = subprocess.run(_bench(tmp_path / "full", config, "--devices", "2"), env=env, capture_output=True,
                          text=True, timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]
    # shard 1/2 and 2/2 as two processes running at the same time, both writing into one folder
    shared = tmp_path / "shared"
    procs = [subprocess.Popen(_bench(shared, config, "--shard", f"{i}/2"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    starts = sorted((read_record(shared, cell)["started_at"], read_record(shared, cell)["finished_at"])
                    for cell in ("shapes__unet__s0", "shapes__unet__s1"))
    assert starts[1][0] <= starts[0][1], f"the shards did not overlap in time: {starts}"
    merged = subprocess.run([sys.executable, "-m", "zoo", "leaderboard", str(shared), "--no-plots"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stderr[-3000:]
    for a, b in zip(_table(shared), _table(tmp_path / "full")):
        pd.testing.assert_frame_equal(a, b)


def read_record(out: Path, cell: str) -> dict:
    import json

    return json.loads((out / "cells" / cell / "record.json").read_text())


def test_device_slots_split_cpu_threads_or_pin_gpus(monkeypatch):
    from zoo.bench.runner import device_slots

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert device_slots(1, "cpu") == [{}]
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert device_slots(4, "cpu") == [{"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}] * 4
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert device_slots(2, "auto") == [{"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}] * 2  # no GPU: the CPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_slots(2, "cuda") == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    with pytest.raises(OptionError, match="only 2 CUDA GPU"):
        device_slots(3, "cuda")
    with pytest.raises(OptionError, match=">= 1"):
        device_slots(0, "cpu")


def test_gpu_slots_take_the_parents_gpus_not_the_first_ones(monkeypatch):
    from zoo.bench.runner import device_slots, gpu_slots

    assert gpu_slots(2, "2,3", 2) == ["2", "3"]  # SLURM gave this job GPUs 2 and 3
    assert gpu_slots(2, None, 4) == ["0", "1"]
    assert gpu_slots(2, "GPU-8f3a, GPU-11c2", 2) == ["GPU-8f3a", "GPU-11c2"]
    assert gpu_slots(1, "5,-1,6", 1) == ["5"]  # CUDA stops at an invalid entry; torch counts 1
    with pytest.raises(OptionError, match=r"only 1 CUDA GPU\(s\) are visible \(CUDA_VISIBLE_DEVICES='5,-1,6'\)"):
        gpu_slots(2, "5,-1,6", 1)

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert device_slots(2, "auto") == [{"CUDA_VISIBLE_DEVICES": "2"}, {"CUDA_VISIBLE_DEVICES": "3"}]
    assert device_slots(2, None, environ={"CUDA_VISIBLE_DEVICES": "6,7"}) == [
        {"CUDA_VISIBLE_DEVICES": "6"}, {"CUDA_VISIBLE_DEVICES": "7"}]
    # fewer GPUs than slots with device auto: an error, not CPU-thread slots that all train on GPU 0
    with pytest.raises(OptionError, match="--devices 4 runs one cell per GPU, but only 2"):
        device_slots(4, "auto")
    with pytest.raises(OptionError, match="pass --device cuda"):
        device_slots(2, "cuda:1")


# Two gloo ranks train a small DDP model with zoo.engine.train_one_epoch; rank 1 "runs out of memory" (a real
# torch.OutOfMemoryError, raised in its forward) whenever it gets more than MAX images per pass. A short process
# group timeout turns a hang (ranks whose collectives no longer match) into a failure within seconds.
OOM_SCRIPT = '''
import json, sys
import torch, torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from zoo import distributed
from zoo.engine import LoopState, train_one_epoch
from zoo.precision import Precision

MAX = int(sys.argv[2])


class Net(nn.Module):
    def __init__(self, rank):
        super().__init__()
        self.rank = rank
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))

    def forward(self, x):
        if self.rank == 1 and x.shape[0] > MAX:
            raise torch.OutOfMemoryError(f"simulated: {x.shape[0]} images on rank 1")
        return self.body(x)


def train(rank):  # wrapped as zoo.training wraps it; the wrapper dies with this frame, as a run's does
    torch.manual_seed(0)
    model = Net(rank)
    ddp = DistributedDataParallel(model, broadcast_buffers=False)
    gen = torch.Generator().manual_seed(1 + rank)
    loader = [(torch.randn(4, 3, 8, 8, generator=gen), torch.randint(0, 2, (4, 8, 8), generator=gen))
              for _ in range(3)]
    state = LoopState()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    try:
        stats = train_one_epoch(ddp, loader, nn.CrossEntropyLoss(), opt, precision=Precision("cpu", "fp32"),
                                state=state)
        outcome = {"steps": stats.steps, "micro": state.micro_batch, "backoffs": state.oom_backoffs}
    except torch.OutOfMemoryError as exc:
        outcome = {"gave_up": str(exc)}
    outcome["weights"] = [float(p.detach().double().sum()) for p in model.parameters()]
    outcome["buffers"] = [float(b.double().sum()) for b in model.buffers()]
    return outcome


with distributed.session("cpu", timeout_s=20):  # the group and its teardown exactly as `zoo train` has them
    rank = dist.get_rank()
    outcome = train(rank)
    with open(sys.argv[1] + f"-{rank}.json", "w") as f:
        json.dump(outcome, f)
'''


def _oom_ranks(tmp_path: Path, max_images: int) -> list[dict]:
    import json

    script = tmp_path / "oom.py"
    script.write_text(OOM_SCRIPT)
    out = tmp_path / f"oom{max_images}"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
               str(out), str(max_images)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return [json.loads(Path(f"{out}-{r}.json").read_text()) for r in (0, 1)]


def test_an_oom_on_one_rank_backs_every_rank_off_together(tmp_path):
    zero, one = _oom_ranks(tmp_path, max_images=2)
    # rank 0 never ran out of memory, yet halved its passes with rank 1: the collectives kept matching
    assert zero["steps"] == one["steps"] == 3
    assert zero["micro"] == one["micro"] == 2 and zero["backoffs"] == one["backoffs"] == 1
    assert zero["weights"] == pytest.approx(one["weights"], rel=1e-6)  # the same averaged gradients
    assert zero["buffers"] == pytest.approx(one["buffers"], rel=1e-6)  # rank 0's batch-norm statistics


def test_an_oom_that_never_fits_ends_every_rank(tmp_path):
    zero, one = _oom_ranks(tmp_path, max_images=0)
    assert "another rank" in zero["gave_up"] and "simulated" in one["gave_up"]
    assert "after 2 back-offs, 1 images per pass" in zero["gave_up"]
