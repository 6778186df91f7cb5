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
    assert prec.name == ("bf16" if torch.cuda.is_bf16_supported() else "fp16") and prec.channels_last
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
