"""zoo.precision: what ``auto`` resolves to, the CPU fast path, and the CUDA path (skipped without a GPU)."""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from zoo import precision as zp
from zoo.precision import Precision, compile_for_inference, cpu_has_native_bf16, resolve_precision

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
needs_bf16 = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX-512 BF16/AMX)")


def test_auto_on_the_cpu_follows_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zp, "cpu_has_native_bf16", lambda: True)
    fast = Precision("cpu", "auto")
    assert (fast.name, fast.dtype, fast.channels_last) == ("bf16", torch.bfloat16, True)
    assert fast.describe() == {"device": "cpu", "precision": "bf16", "channels_last": True,
                               "precision_requested": "auto"}
    monkeypatch.setattr(zp, "cpu_has_native_bf16", lambda: False)
    plain = Precision("cpu", "auto")
    assert (plain.name, plain.dtype, plain.channels_last) == ("fp32", None, False)
    assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"


def test_explicit_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zp, "cpu_has_native_bf16", lambda: True)
    assert not Precision("cpu", "auto", channels_last=False).channels_last
    assert Precision("cpu", "fp32", channels_last=True).channels_last
    assert Precision("cpu", "fp32").name == "fp32"  # --precision fp32 turns the fast path off


def test_native_bf16_probe_agrees_with_torch() -> None:
    expected = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert cpu_has_native_bf16() is expected


def test_fast_path_output_is_close_to_fp32() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 2, 1)).eval()
    x = torch.randn(2, 3, 16, 16)
    fast = Precision("cpu", "bf16")
    with torch.inference_mode():
        ref = model(x)
        with fast.autocast():
            out = fast.module(model)(fast.tensor(x))
    assert out.dtype == torch.bfloat16 and fast.tensor(x).is_contiguous(memory_format=torch.channels_last)
    assert torch.linalg.norm(out.float() - ref) / torch.linalg.norm(ref) < 0.02


def test_train_config_defaults_to_auto_and_records_the_resolved_mode(tmp_path) -> None:
    from zoo import training

    config = training.TrainConfig(model="unet", dataset="shapes", model_options={"width": 4},
                                  dataset_options={"image_size": 32, "train_items": 8, "val_items": 4,
                                                   "test_items": 4},
                                  epochs=1, batch_size=4, image_size=32, metrics=("dice",), device="cpu")
    assert config.precision == "auto" and config.channels_last is None
    result = training.run(config, tmp_path, quiet=True)
    assert result.status == "ok", result.error
    expected = "bf16" if cpu_has_native_bf16() else "fp32"
    assert result.precision["precision"] == expected and result.precision["precision_requested"] == "auto"
    assert result.precision["channels_last"] == (expected == "bf16")


@pytest.mark.slow
@needs_bf16
def test_fast_path_dice_is_inside_the_fp32_confidence_interval(tmp_path) -> None:
    """3 seeds each of fp32 and the fast path on ``shapes``: the fast path's mean test Dice lies in the 95% CI
    (Student t, 2 degrees of freedom) of the fp32 runs, widened by 0.01 for the seeds' luck."""
    from zoo import training

    torch.set_num_threads(1)  # steadier on a shared machine, and tiny models gain nothing from two

    def dice(mode: str, seed: int) -> float:
        config = training.TrainConfig(
            model="unet", dataset="shapes", model_options={"width": 8},
            dataset_options={"image_size": 48, "train_items": 96, "val_items": 16, "test_items": 32},
            epochs=5, batch_size=8, image_size=48, metrics=("dice",), device="cpu", precision=mode, seed=seed,
            optimizer="adamw", lr=3e-3, schedule="cosine", deterministic=True)
        result = training.run(config, tmp_path / f"{mode}{seed}", quiet=True)
        assert result.status == "ok", result.error
        return result.test_pooled["dice"]

    fp32 = [dice("fp32", s) for s in range(3)]
    fast = [dice("auto", s) for s in range(3)]
    mean, sd = statistics.mean(fp32), statistics.stdev(fp32)
    half = 4.303 * sd / 3 ** 0.5 + 0.01
    assert mean > 0.3, f"fp32 did not learn: {fp32}"  # the comparison means something only if both learn
    assert abs(statistics.mean(fast) - mean) <= half, f"fast path {fast} vs fp32 {fp32} (CI +/- {half:.3f})"


@needs_cuda
@pytest.mark.gpu
def test_cuda_auto_is_amp_with_channels_last_and_cudnn_benchmark() -> None:
    torch.use_deterministic_algorithms(False)
    prec = Precision("cuda", "auto")
    assert prec.name == ("bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp16") and prec.channels_last
    assert torch.backends.cudnn.benchmark
    assert prec.scaler.is_enabled() == (prec.name == "fp16")
    x = prec.tensor(torch.randn(2, 3, 8, 8).pin_memory())
    assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)


@needs_cuda
@pytest.mark.gpu
def test_cuda_graphs_inference_matches_eager() -> None:
    prec = Precision("cuda", "fp32")
    model = prec.module(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)).eval())
    x = prec.tensor(torch.randn(2, 3, 16, 16))
    compiled = compile_for_inference(model, prec)
    with torch.inference_mode():
        ref = model(x)
        for _ in range(3):  # record, then replay the graph
            out = compiled(x)
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# The CUDA paths without a GPU: torch.cuda's answers are faked, zoo's decisions are real


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):
    """A host with two GPUs: cuda:0 an A100 (8.0), cuda:1 a V100 (7.0) whose bf16 torch calls supported
    (emulated). Returns the list of devices ``set_device`` was called with; restores the TF32 flags."""
    caps = {0: (8, 0), 1: (7, 0)}
    current = [0]
    calls: list[object] = []

    def index(device=None) -> int:
        if device is None:
            return current[0]
        device = torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
        return current[0] if device.index is None else device.index

    def set_device(device) -> None:
        calls.append(device)
        current[0] = index(device)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: caps[index(device)])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: ["A100", "V100"][index(device)])
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    conv, matmul = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    benchmark = torch.backends.cudnn.benchmark
    yield calls
    torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = conv, matmul
    torch.backends.cudnn.benchmark = benchmark


def test_auto_on_cuda_is_bf16_only_from_compute_capability_8(fake_cuda) -> None:
    # torch.cuda.is_bf16_supported() says yes on both (emulation counts); the capability decides
    assert resolve_precision("auto", torch.device("cuda:0")) == "bf16"
    assert resolve_precision("auto", torch.device("cuda:1")) == "fp16"
    assert zp.runtime_identity("cuda:1", "auto") == {"device": "cuda", "precision": "fp16"}
    assert zp.runtime_identity("auto", "auto") == {"device": "cuda", "precision": "bf16"}


def test_a_named_gpu_becomes_the_current_device_and_is_the_one_asked(fake_cuda) -> None:
    prec = Precision("cuda:1", "auto")
    assert fake_cuda == [torch.device("cuda:1")]
    assert (prec.name, prec.dtype, prec.scaler.is_enabled()) == ("fp16", torch.float16, True)
    assert Precision("cuda:0", "auto").name == "bf16"


def test_fp32_on_cuda_turns_tf32_off_and_tf32_turns_it_on(fake_cuda) -> None:
    torch.backends.cudnn.conv.fp32_precision = "tf32"  # cuDNN's default: "fp32" convolutions in TF32
    prec = Precision("cuda:0", "fp32")
    assert prec.describe()["precision"] == "fp32" and prec.dtype is None
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    prec = Precision("cuda:0", "tf32")
    assert prec.describe()["precision"] == "tf32" and prec.dtype is None and not prec.channels_last
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"


def test_tf32_and_fp16_need_cuda() -> None:
    from zoo.errors import OptionError

    for name in ("tf32", "fp16"):
        with pytest.raises(OptionError, match=f"precision '{name}' needs CUDA"):
            Precision("cpu", name)


def test_nvidia_driver_version_is_read_from_proc(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    version = tmp_path / "version"
    monkeypatch.setattr(zp, "_NVIDIA_VERSION", version)
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n")
    assert zp.nvidia_driver() == "550.54.15"
    version.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build\n")
    assert zp.nvidia_driver() == "560.35.03"


def test_auto_on_the_cpu_with_an_nvidia_driver_warns_once(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    def too_old() -> None:
        raise RuntimeError("The NVIDIA driver on your system is too old (found version 11040).\nMore text")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "init", too_old)
    monkeypatch.setattr(zp, "nvidia_driver", lambda: "550.54.15")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    zp._warn_cpu_fallback.cache_clear()
    with caplog.at_level("WARNING", logger="zoo.precision"):
        assert zp.resolve_device("auto") == CPU and zp.resolve_device("auto") == CPU
    warnings = [r.getMessage() for r in caplog.records if r.name == "zoo.precision"]
    assert len(warnings) == 1, warnings
    assert "driver 550.54.15" in warnings[0] and torch.__version__ in warnings[0] and "too old" in warnings[0]

    caplog.clear()
    zp._warn_cpu_fallback.cache_clear()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # GPUs hidden on purpose: no warning
    zp.resolve_device("auto")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(zp, "nvidia_driver", lambda: None)  # no NVIDIA driver: nothing to say
    zp._warn_cpu_fallback.cache_clear()
    zp.resolve_device("auto")
    zp.resolve_device("cpu")
    assert not [r for r in caplog.records if r.name == "zoo.precision"]
    zp._warn_cpu_fallback.cache_clear()


def test_cuda_graph_outputs_survive_the_next_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake ``torch.compile`` that, like a CUDA-graph replay, writes every output into one static buffer:
    the outputs compile_for_inference hands out must still hold their own values after the next call."""
    from types import SimpleNamespace

    class StaticOutput(nn.Module):
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model, self.buffer = model, None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.model(x)
            self.buffer = out.clone() if self.buffer is None else self.buffer.copy_(out)
            return self.buffer

    modes = []

    def fake_compile(model: nn.Module, mode: str = "default") -> nn.Module:
        modes.append(mode)
        return StaticOutput(model)

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = nn.Conv2d(3, 2, 1).eval()
    compiled = compile_for_inference(model, SimpleNamespace(device=torch.device("cuda")))
    a, b = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    with torch.inference_mode():
        kept = [compiled(a), compiled(b)]
        torch.testing.assert_close(kept[0], model(a))
        torch.testing.assert_close(kept[1], model(b))
    assert modes == ["reduce-overhead"]
    compile_for_inference(model, SimpleNamespace(device=CPU))
    assert modes[-1] == "default"


def test_bf16_asked_for_on_a_cpu_without_native_bf16_warns_once_and_is_recorded(monkeypatch, caplog) -> None:
    monkeypatch.setattr(zp, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(zp, "_warned_bf16", False)
    with caplog.at_level("WARNING", logger="zoo.precision"):
        slow = Precision("cpu", "bf16")
        Precision("cpu", "bf16")
    lines = [r.getMessage() for r in caplog.records if "native bf16" in r.getMessage()]
    assert len(lines) == 1
    assert zp.device_name(CPU) in lines[0] and "0.08x" in lines[0] and "fp32" in lines[0]
    assert slow.name == "bf16" and slow.describe()["cpu_bf16"] == zp.EMULATED_BF16_NOTE
    # auto keeps fp32 there, silently; a CPU with native bf16 records nothing extra
    caplog.clear()
    assert Precision("cpu", "auto").name == "fp32" and "cpu_bf16" not in Precision("cpu", "auto").describe()
    monkeypatch.setattr(zp, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(zp, "_warned_bf16", False)
    assert "cpu_bf16" not in Precision("cpu", "bf16").describe() and not caplog.records
