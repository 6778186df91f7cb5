"""Check every CUDA path of the zoo on this machine's GPU in one go, and print one PASS/FAIL/SKIP line per check.

    python benchmarks/gpu_check.py                    # on a GPU machine, from a fresh clone: ~5 minutes (estimate)
    python benchmarks/gpu_check.py --json gpu.json    # also write the results (card, versions, timings)
    python benchmarks/gpu_check.py --dry-run          # on the CPU: the same checks, tiny, CUDA-only ones skipped

Exit status 0 when no check failed. Record a GPU run's lines, with the card's name, in ``docs/gpu.md``.
The dry run is part of the test suite (``tests/test_gpu_check.py``), so this script keeps up with the code.

What each check proves is in its docstring; together they cover issue 22: precision choice by compute
capability (and TF32 off in fp32), every precision with and without channels_last, compiled inference with
CUDA graphs (outputs kept across calls), deterministic kernels (refused up front, naming the op) and the
non-deterministic default, a quick ``zoo bench`` of every built-in model, a real out-of-memory back-off under a
memory cap, inference timing against a synchronised loop, fp32 vs bf16 + channels_last at width 64, and, with
two GPUs or more, device pinning, ``--devices`` slots and the out-of-memory agreement of torchrun ranks (nccl).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a fresh clone without installing
    sys.path.insert(0, str(ROOT))

from zoo import registry  # noqa: E402
from zoo.engine import LoopState, build_optimizer, train_one_epoch  # noqa: E402
from zoo.losses import build_loss  # noqa: E402
from zoo.memory import peak_memory_mb, reset_peak_memory, synchronize  # noqa: E402
from zoo.precision import Precision, compile_for_inference, device_name, nvidia_driver  # noqa: E402


class Skip(Exception):
    """The check does not apply here (no GPU, one GPU, a dry run)."""


@dataclass
class Context:
    """What every check gets: the device, the size of things, a scratch folder, and where timings go."""

    device: torch.device
    dry: bool
    tmp: Path
    gpus: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def need_cuda(self, gpus: int = 1) -> None:
        if self.gpus < gpus:
            raise Skip(f"needs {gpus} CUDA GPU(s), {self.gpus} here")


def _unet(width: int, *, name: str = "unet", classes: int = 2) -> nn.Module:
    return registry.build_model(name, in_channels=3, num_classes=classes, width=width)


def _batch(n: int, size: int, device: torch.device, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(n * 1000 + size)
    x = torch.rand(n, 3, size, size, generator=gen)
    y = torch.randint(0, classes, (n, size, size), generator=gen)
    return x.to(device), y.to(device)


def _train_steps(model: nn.Module, prec: Precision, batches: list, *, state: LoopState | None = None) -> float:
    model = prec.module(model).train()
    opt = build_optimizer("adamw", model.parameters(), lr=1e-3)
    stats = train_one_epoch(model, [(prec.tensor(x), prec.tensor(y)) for x, y in batches],
                            build_loss("ce", num_classes=2), opt, precision=prec, state=state)
    assert stats.steps == len(batches) and stats.loss == stats.loss, f"steps {stats.steps}, loss {stats.loss}"
    return stats.loss


# ---------------------------------------------------------------------------------------------------------------
# The checks, in the order they run


def check_auto_resolves_to_the_gpu(ctx: Context) -> str:
    """``device="auto"`` is CUDA here, and ``precision="auto"`` is bf16 exactly from compute capability 8.0."""
    ctx.need_cuda()
    prec = Precision("auto", "auto")
    major, minor = torch.cuda.get_device_capability(prec.device)
    expected = "bf16" if (major, minor) >= (8, 0) else "fp16"
    assert prec.device.type == "cuda", f"auto resolved to {prec.device}"
    assert prec.name == expected and prec.scaler.is_enabled() == (expected == "fp16"), prec.describe()
    return f"{prec.name} on compute capability {major}.{minor}"


def check_every_precision_trains(ctx: Context) -> str:
    """A few train steps of ``unet`` in each precision, with and without channels_last: finite losses, and
    fp32 really is fp32 (TF32 off) while tf32 turns it on."""
    names = ("fp32", "tf32", "bf16", "fp16") if ctx.cuda else ("fp32", "bf16")
    size, n = (32, 2) if ctx.dry else (128, 8)
    done = []
    for name in names:
        for channels_last in (False, True):
            prec = Precision(str(ctx.device), name, channels_last=channels_last)
            if ctx.cuda:
                want = "tf32" if name == "tf32" else "ieee"
                assert torch.backends.cudnn.conv.fp32_precision == want, (name, torch.backends.cudnn.conv.fp32_precision)
            torch.manual_seed(0)
            _train_steps(_unet(8), prec, [_batch(n, size, torch.device("cpu")) for _ in range(2)])
            done.append(f"{name}{'+cl' if channels_last else ''}")
    return ", ".join(done)


def check_channels_last_matches(ctx: Context) -> str:
    """bf16 + channels_last inference agrees with fp32 NCHW (relative L2 < 2%)."""
    size = 32 if ctx.dry else 128
    torch.manual_seed(0)
    model = _unet(8).eval()
    x, _ = _batch(2, size, torch.device("cpu"))
    with torch.inference_mode():
        ref = Precision(str(ctx.device), "fp32").module(model)(x.to(ctx.device)).float()
        fast = Precision(str(ctx.device), "bf16", channels_last=True)
        with fast.autocast():
            out = fast.module(model)(fast.tensor(x)).float()
    err = float(torch.linalg.norm(out - ref) / torch.linalg.norm(ref))
    assert err < 0.02, f"relative L2 {err:.4f}"
    return f"relative L2 {err:.4f}"


def check_compiled_outputs_survive_replays(ctx: Context) -> str:
    """CUDA-graph inference (``compile_for_inference``, as ``zoo predict --compile``): the outputs of two calls on
    different inputs, both kept, each equal eager (the second replay must not overwrite the first)."""
    ctx.need_cuda()
    prec = Precision(str(ctx.device), "fp32")
    model = prec.module(_unet(8)).eval()
    compiled = compile_for_inference(model, prec)
    a, b = (prec.tensor(_batch(2, 64, torch.device("cpu"))[0] + i) for i in range(2))
    started = time.perf_counter()
    with torch.inference_mode():
        for _ in range(3):  # compile, record the graph, replay
            compiled(a)
        kept = [compiled(a), compiled(b)]
        torch.testing.assert_close(kept[0], model(a), rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(kept[1], model(b), rtol=1e-3, atol=1e-3)
    ctx.timings["compile_s"] = time.perf_counter() - started
    return f"compiled and checked in {ctx.timings['compile_s']:.0f} s"


def check_deterministic_refuses_up_front(ctx: Context) -> str:
    """``--deterministic`` on CUDA: ``unet-bilinear`` is refused before training, naming the op; ``unet``
    (transposed convs) trains bit-for-bit the same twice; without it, ``unet-bilinear`` trains."""
    ctx.need_cuda()
    from zoo.errors import OptionError
    from zoo.seeding import check_deterministic_step, seed_everything

    prec = Precision(str(ctx.device), "fp32")
    x, y = _batch(2, 64, ctx.device)
    loss = build_loss("ce", num_classes=2)
    try:
        seed_everything(0, deterministic=True)
        try:
            check_deterministic_step(prec.module(_unet(8, name="unet-bilinear")).train(), x, y, loss)
            raise AssertionError("unet-bilinear passed the deterministic check on CUDA")
        except OptionError as exc:
            named = str(exc).split(" needs ")[1].split(",")[0]
        weights = []
        for _ in range(2):
            seed_everything(0, deterministic=True)
            model = _unet(8)
            _train_steps(model, prec, [_batch(4, 64, torch.device("cpu")) for _ in range(3)])
            weights.append(torch.cat([p.detach().flatten().cpu() for p in model.parameters()]))
        assert torch.equal(weights[0], weights[1]), "two deterministic runs differ"
    finally:
        seed_everything(0, deterministic=False)
    _train_steps(_unet(8, name="unet-bilinear"), prec, [_batch(4, 64, torch.device("cpu"))])
    return f"refused naming {named}; deterministic unet reproduced bit for bit"


def check_quick_bench_every_model(ctx: Context) -> str:
    """``zoo bench --profile quick`` with every built-in model on ``shapes``: every cell ok, trained on this
    device, non-deterministic by default, peak memory read as CUDA allocations; ``zoo predict --compile
    --native`` on two test images gives the masks of the eager model."""
    from zoo.bench.records import read_records

    models = "unet" if ctx.dry else "*"
    out = ctx.tmp / "bench"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "zoo", "bench", "--profile", "quick", "--models", models,
                           "--datasets", "shapes", "--seeds", "0", "--out", str(out), "--device", str(ctx.device.type)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    ctx.timings["quick_bench_s"] = time.perf_counter() - started
    records = read_records([out])
    bad = [f"{r.model}: {r.status} {r.error}" for r in records if r.status != "ok"]
    assert records and not bad, (bad or done.stderr[-1500:])
    for r in records:
        assert r.device and r.device.startswith(ctx.device.type), (r.model, r.device)
        if ctx.cuda:
            assert r.memory_kind == "cuda_max_allocated" and (r.peak_memory_mb or 0) > 0, (r.model, r.peak_memory_mb)
            assert r.config["deterministic"] is False, r.model
    if ctx.cuda:
        _predict_compiled_native(records[0], ctx)
    return f"{len(records)} models ok in {ctx.timings['quick_bench_s']:.0f} s"


def _predict_compiled_native(record: Any, ctx: Context) -> None:
    import numpy as np
    from PIL import Image

    from zoo.training.prediction import predict_files

    best = Path(record.checkpoints["best"])
    images = []
    for i in range(2):
        path = ctx.tmp / f"image{i}.png"
        rng = np.random.default_rng(i)
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(path)
        images.append(path)
    masks = {}
    for compiled in (False, True):
        result = predict_files(best, images, ctx.tmp / f"pred{compiled}", mode="native", batch_size=1,
                               device=str(ctx.device), precision="fp32", compile=compiled)
        assert result.ok, result.failures
        masks[compiled] = [np.asarray(Image.open(p)) for p in result.masks]
    for eager, graph in zip(masks[False], masks[True]):
        assert (eager == graph).mean() > 0.999, "compiled native prediction differs from eager"


def check_real_oom_backs_off(ctx: Context) -> str:
    """Under a memory cap (``set_per_process_memory_fraction``) that fits about 4 images, a batch of 16 runs
    out of memory for real, backs off (halving), and trains."""
    ctx.need_cuda()
    prec = Precision(str(ctx.device), "fp32")
    model = prec.module(_unet(32)).train()
    size = 256
    synchronize(ctx.device)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(ctx.device)
    reset_peak_memory(ctx.device)
    _train_steps(model, prec, [_batch(2, size, torch.device("cpu"))])
    per_image = (torch.cuda.max_memory_allocated(ctx.device) - base) / 2
    total = torch.cuda.get_device_properties(ctx.device).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, (base + 4.5 * per_image) / total), ctx.device)
    state = LoopState()
    try:
        _train_steps(model, prec, [_batch(16, size, torch.device("cpu")) for _ in range(2)], state=state)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, ctx.device)
        torch.cuda.empty_cache()
    assert state.oom_backoffs >= 1 and state.micro_batch is not None, "no out-of-memory happened under the cap"
    return f"{state.oom_backoffs} back-off(s) to {state.micro_batch} images per pass ({per_image / 2**20:.0f} MiB/image)"


def check_timing_is_synchronised(ctx: Context) -> str:
    """``measure_inference`` (the bench's numbers) agrees with a loop timed between ``synchronize`` calls."""
    from zoo.bench.cell import measure_inference

    size, n, repeats = (32, 2, 3) if ctx.dry else (256, 16, 10)
    prec = Precision(str(ctx.device), "bf16" if ctx.cuda else "fp32")
    model = prec.module(_unet(16)).eval()
    measured = measure_inference(model, prec, in_channels=3, image_size=size, batch_size=n, repeats=repeats)
    x = prec.tensor(torch.rand(n, 3, size, size))
    with torch.inference_mode(), prec.autocast():
        for _ in range(3):
            model(x)
        synchronize(ctx.device)
        started = time.perf_counter()
        for _ in range(repeats):
            model(x)
        synchronize(ctx.device)
    loop = n * repeats / (time.perf_counter() - started)
    ratio = measured["infer_images_per_s"] / loop
    ctx.timings["infer_images_per_s"] = measured["infer_images_per_s"]
    if not ctx.dry:  # a shared CPU is too noisy for a bound
        assert 0.7 < ratio < 1.3, f"measure_inference {measured['infer_images_per_s']:.0f} vs loop {loop:.0f} img/s"
    return f"{measured['infer_images_per_s']:.0f} vs {loop:.0f} img/s (x{ratio:.2f})"


def check_fp32_vs_bf16_channels_last(ctx: Context) -> str:
    """Train-step throughput of ``unet`` width 64 (256 px, batch 8): fp32 (TF32 off), tf32 and bf16 +
    channels_last; bf16 + channels_last must beat fp32 on a card with bf16 tensor cores."""
    ctx.need_cuda()
    rates = {}
    for name, channels_last in (("fp32", False), ("tf32", False), ("bf16", True)):
        prec = Precision(str(ctx.device), name, channels_last=channels_last)
        model = _unet(64)
        batches = [_batch(8, 256, torch.device("cpu")) for _ in range(2)]
        _train_steps(model, prec, batches)  # warm-up (cuDNN autotuning)
        synchronize(ctx.device)
        started = time.perf_counter()
        _train_steps(model, prec, batches * 3)
        synchronize(ctx.device)
        rates[name] = 8 * 6 / (time.perf_counter() - started)
        ctx.timings[f"train_w64_{name}_img_s"] = rates[name]
    if torch.cuda.get_device_capability(ctx.device) >= (8, 0):
        assert rates["bf16"] > rates["fp32"], rates
    return ", ".join(f"{k} {v:.0f} img/s" for k, v in rates.items()) + f" (bf16+cl x{rates['bf16'] / rates['fp32']:.1f})"


def check_second_gpu_is_measured_on_itself(ctx: Context) -> str:
    """``--device cuda:1``: training allocates on cuda:1 and its peak is read there, cuda:0 untouched."""
    ctx.need_cuda(2)
    for index in (0, 1):
        reset_peak_memory(f"cuda:{index}")
    prec = Precision("cuda:1", "bf16")
    _train_steps(_unet(16), prec, [_batch(4, 128, torch.device("cpu"))])
    one, _ = peak_memory_mb("cuda:1")
    zero, _ = peak_memory_mb("cuda:0")
    torch.cuda.set_device(0)
    assert one > 10 and zero < one / 10, f"peak cuda:1 {one:.0f} MiB, cuda:0 {zero:.0f} MiB"
    return f"peak {one:.0f} MiB on cuda:1, {zero:.0f} MiB on cuda:0"


def check_device_slots_take_this_jobs_gpus(ctx: Context) -> str:
    """``--devices 2`` under ``CUDA_VISIBLE_DEVICES=1,0``: slots get GPU 1 then GPU 0 (the mask's order)."""
    ctx.need_cuda(2)
    code = ("import os, torch; from zoo.bench.runner import device_slots; "
            "print(device_slots(2, 'auto'))")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "1,0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert "'CUDA_VISIBLE_DEVICES': '1'}, {'CUDA_VISIBLE_DEVICES': '0'" in done.stdout, done.stdout + done.stderr
    return done.stdout.strip()


def check_ddp_oom_agreement_on_nccl(ctx: Context) -> str:
    """Two nccl ranks under torchrun; rank 1 really runs out of memory (a memory cap): both back off together
    and finish with the same weights, instead of hanging."""
    ctx.need_cuda(2)
    script = ctx.tmp / "ddp_oom.py"
    script.write_text(_DDP_OOM)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script), str(ctx.tmp / "ddp")], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [json.loads((ctx.tmp / f"ddp-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["micro"] == ranks[1]["micro"] is not None and ranks[0]["weights"] == ranks[1]["weights"], ranks
    return f"both ranks backed off to {ranks[0]['micro']} images per pass"


_DDP_OOM = '''
import json, sys, torch, torch.distributed as dist
from datetime import timedelta
from torch.nn.parallel import DistributedDataParallel
from zoo import registry
from zoo.engine import LoopState, build_optimizer, train_one_epoch
from zoo.losses import build_loss
from zoo.precision import Precision
dist.init_process_group("nccl", timeout=timedelta(seconds=60))
rank = dist.get_rank()
prec = Precision(f"cuda:{rank}", "fp32")
model = prec.module(registry.build_model("unet", in_channels=3, num_classes=2, width=32))
ddp = DistributedDataParallel(model, device_ids=[rank], broadcast_buffers=False)
if rank == 1:  # about 4 images of 256 px fit
    torch.cuda.set_per_process_memory_fraction(1.6e9 / torch.cuda.get_device_properties(rank).total_memory, rank)
batches = [(torch.rand(16, 3, 256, 256, device=prec.device), torch.randint(0, 2, (16, 256, 256), device=prec.device))
           for _ in range(2)]
state = LoopState()
train_one_epoch(ddp, batches, build_loss("ce", num_classes=2), build_optimizer("sgd", model.parameters(), lr=0.01),
                precision=prec, state=state)
out = {"micro": state.micro_batch, "weights": float(sum(p.detach().double().sum() for p in model.parameters()))}
open(sys.argv[1] + f"-{rank}.json", "w").write(json.dumps(out))
dist.barrier()
dist.destroy_process_group()
'''

CHECKS: tuple[Callable[[Context], str], ...] = (
    check_auto_resolves_to_the_gpu,
    check_every_precision_trains,
    check_channels_last_matches,
    check_compiled_outputs_survive_replays,
    check_deterministic_refuses_up_front,
    check_quick_bench_every_model,
    check_real_oom_backs_off,
    check_timing_is_synchronised,
    check_fp32_vs_bf16_channels_last,
    check_second_gpu_is_measured_on_itself,
    check_device_slots_take_this_jobs_gpus,
    check_ddp_oom_agreement_on_nccl,
)


def _environment(ctx: Context) -> dict[str, Any]:
    info: dict[str, Any] = {"device": device_name(ctx.device), "torch": torch.__version__, "cuda": torch.version.cuda,
                            "driver": nvidia_driver(), "gpus": ctx.gpus, "python": platform.python_version(),
                            "dry_run": ctx.dry, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if ctx.cuda:
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(ctx.device)))
        info["memory_gib"] = round(torch.cuda.get_device_properties(ctx.device).total_memory / 2**30, 1)
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="run on the CPU, tiny, skipping CUDA-only checks")
    parser.add_argument("--json", type=Path, help="write the results (environment, checks, timings) here")
    parser.add_argument("-k", dest="only", help="run only checks whose name contains this")
    args = parser.parse_args(argv)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before the first cuBLAS handle (deterministic check)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() and not args.dry_run else 0
    if not gpus and not args.dry_run:
        print("no CUDA GPU is visible; use --dry-run to exercise the script on the CPU", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="zoo-gpu-check-") as tmp:
        ctx = Context(device=torch.device("cuda:0" if gpus else "cpu"), dry=args.dry_run, tmp=Path(tmp), gpus=gpus)
        env = _environment(ctx)
        print(f"# {env['device']} | torch {env['torch']} | CUDA {env['cuda']} | driver {env['driver']} | "
              f"{gpus} GPU(s){' | dry run on the CPU' if ctx.dry else ''}", flush=True)
        results = []
        for check in CHECKS:
            name = check.__name__.removeprefix("check_")
            if args.only and args.only not in name:
                continue
            started = time.perf_counter()
            try:
                status, detail = "PASS", check(ctx)
            except Skip as exc:
                status, detail = "SKIP", str(exc)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, and the next check runs
                status, detail = "FAIL", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                traceback.print_exc(file=sys.stderr)
            seconds = time.perf_counter() - started
            results.append({"check": name, "status": status, "detail": detail, "seconds": round(seconds, 1)})
            print(f"{status}  {name:<40} {detail}  ({seconds:.1f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "checks": results, "timings": ctx.timings}, indent=1) + "\n")
    failed = [r["check"] for r in results if r["status"] == "FAIL"]
    print(f"# {len(results) - len(failed)} of {len(results)} checks did not fail" + (f"; failed: {', '.join(failed)}"
                                                                                     if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
