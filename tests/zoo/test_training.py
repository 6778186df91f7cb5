"""zoo.training.run end to end on fake plugins: determinism, resume equality, divergence, OOM back-off,
checkpoints, logs and the test-split evaluation."""

from __future__ import annotations

import json
import math

import pytest
import zoo
import zoo.api
import torch
from safetensors.torch import load_file

from zoo.errors import CheckpointError, OptionError, UnknownNameError
from zoo.training import TrainConfig, evaluate_checkpoint, run

from tests.zoo.engine_fakes import registries  # noqa: F401  (fixture)


def _config(**overrides) -> TrainConfig:
    base = dict(model="conv-net", dataset="squares", epochs=3, batch_size=4, image_size=32, augment="light",
                device="cpu", deterministic=True, seed=3, schedule="cosine")
    return TrainConfig(**{**base, **overrides})


def _weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_run_trains_selects_and_scores_test(tmp_path, registries):
    result = run(_config(epochs=4, lr=0.05), tmp_path, quiet=True, registries=registries)
    assert result.status == "ok", result.error
    assert (result.epochs_done, result.steps_done) == (4, 8)  # 8 train items, batch 4, drop_last
    assert result.best_epoch is not None and 1 <= result.best_epoch <= 4
    assert result.test_pooled["dice"] > 0.5  # the toy task is easy; an untrained net scores near 0 or 0.4
    assert len(result.per_image) == 3 and {r[1] for r in result.per_image} == {"dice"}
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert all({"train_loss", "lr", "seconds", "val/dice"} <= set(r) for r in log)
    assert log[-1]["lr"] < log[0]["lr"]  # cosine
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "last.pt").exists()
    assert (tmp_path / "test_per_image.csv").read_text().startswith("image_id,metric,value")
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "ok" and saved["config"]["model"] == "conv-net"
    scores = [r["val/dice"] for r in log]
    assert result.best_score == max(scores) and log[result.best_epoch - 1]["val/dice"] == max(scores)


def test_same_seed_gives_identical_weights_and_metrics(tmp_path, registries):
    a = run(_config(), tmp_path / "a", quiet=True, registries=registries)
    b = run(_config(), tmp_path / "b", quiet=True, registries=registries)
    c = run(_config(seed=4), tmp_path / "c", quiet=True, registries=registries)
    wa, wb, wc = (_weights(tmp_path / x / "last.safetensors") for x in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.test_pooled == b.test_pooled and a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)  # the seed matters


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, registries):
    full = run(_config(epochs=4), tmp_path / "full", quiet=True, registries=registries)
    part = run(_config(epochs=4), tmp_path / "part", quiet=True, registries=registries,
               on_epoch_end=lambda state, record: state.epoch == 2)
    assert part.status == "interrupted" and part.epochs_done == 2
    resumed = run(_config(epochs=4), tmp_path / "part", resume=True, quiet=True, registries=registries)
    assert resumed.status == "ok" and resumed.epochs_done == 4 and resumed.steps_done == full.steps_done
    wf, wr = _weights(tmp_path / "full" / "last.safetensors"), _weights(tmp_path / "part" / "last.safetensors")
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
    assert resumed.test_pooled == full.test_pooled
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]


def test_resume_refuses_a_changed_recipe(tmp_path, registries):
    run(_config(epochs=1), tmp_path, quiet=True, registries=registries)
    with pytest.raises(CheckpointError, match="lr"):
        run(_config(epochs=2, lr=0.1), tmp_path, resume=True, quiet=True, registries=registries)


def test_nonfinite_losses_stop_the_run_as_diverged(tmp_path, registries):
    result = run(_config(model="nan-net", epochs=5, batch_size=2), tmp_path, quiet=True, registries=registries)
    assert result.status == "diverged" and "non-finite" in result.error
    assert result.nonfinite_losses == 3 and result.steps_done == 2
    assert not result.test_pooled


def test_oom_backoff_halves_the_batch_and_records_it(tmp_path, registries):
    cfg = _config(model="oom-net", model_options={"max_batch": 1}, epochs=1)
    result = run(cfg, tmp_path, quiet=True, registries=registries)
    assert result.status == "ok", result.error
    assert result.batch_size_used == 1 and result.steps_done == 2  # the optimizer still takes whole batches


def test_oom_that_never_fits_reports_oom(tmp_path, registries):
    cfg = _config(model="oom-net", model_options={"max_batch": 0}, epochs=1)
    result = run(cfg, tmp_path, quiet=True, registries=registries)
    assert result.status == "oom" and "simulated" in result.error


def test_max_steps_budget_and_grad_clip(tmp_path, registries):
    result = run(_config(max_steps=3, epochs=1, grad_clip=0.1, optimizer="sgd", schedule="poly"), tmp_path,
                 quiet=True, registries=registries)
    assert result.status == "ok" and result.steps_done == 3 and result.epochs_done == 2


def test_evaluate_checkpoint_reproduces_test_metrics(tmp_path, registries):
    result = run(_config(epochs=2), tmp_path, quiet=True, registries=registries)
    scores = evaluate_checkpoint(tmp_path, registries=registries, device="cpu")
    meta = scores.meta
    assert scores.pooled == pytest.approx(result.test_pooled)
    assert meta["model"] == "conv-net" and meta["dataset"] == "squares"
    native = evaluate_checkpoint(tmp_path, registries=registries, device="cpu", tiled=True)
    assert native.n_images == 3 and not math.isnan(native.pooled["dice"])


def test_a_select_metric_no_metric_produces_is_an_error(tmp_path, registries):
    with pytest.raises(OptionError, match="dice/tumour.*dice"):
        run(_config(epochs=1, select_metric="dice/tumour"), tmp_path, quiet=True, registries=registries)


def test_bad_recipe_values_are_rejected(registries):
    with pytest.raises(UnknownNameError, match="adamw"):
        TrainConfig(model="m", dataset="d", optimizer="adan")
    with pytest.raises(OptionError, match="epochs"):
        TrainConfig.from_dict({"model": "m", "dataset": "d", "epoch": 3})


def test_deterministic_off_the_cpu_fails_up_front_naming_the_op(monkeypatch):
    """The gate of the up-front check: on a (faked) CUDA precision a model whose backward has no deterministic
    kernel is refused before training; on the CPU, or without --deterministic, nothing is run."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from torch import nn

    from tests.zoo.engine_fakes import alerting_identity
    from zoo import losses
    from zoo.training.loop import _check_deterministic_kernels

    NoKernel = alerting_identity("reflection_pad2d_backward_cuda")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)
            self.shapes: list[tuple[int, ...]] = []

        def forward(self, x):
            self.shapes.append(tuple(x.shape))
            return NoKernel.apply(self.conv(x))

    model, loss = Net(), losses.build_loss("ce", num_classes=2)
    cuda = SimpleNamespace(device=torch.device("cuda"), tensor=lambda t: t, autocast=nullcontext)
    cfg = _config(image_size=24, patch_size=(16, 20))
    with pytest.raises(OptionError, match=r"model 'conv-net' with its loss at 16x20 needs "
                                          r"reflection_pad2d_backward_cuda"):
        _check_deterministic_kernels(cfg, model, loss, cuda, in_channels=3, num_classes=2)
    assert model.shapes == [(2, 3, 16, 20)]  # the training patch, not the resize size
    _check_deterministic_kernels(_config(deterministic=False), model, loss, cuda, in_channels=3, num_classes=2)
    cpu = SimpleNamespace(device=torch.device("cpu"), tensor=lambda t: t, autocast=nullcontext)
    _check_deterministic_kernels(cfg, model, loss, cpu, in_channels=3, num_classes=2)
    assert len(model.shapes) == 1


def test_upsampled_scoring_predicts_at_the_training_size_and_scores_every_native_pixel(tmp_path, registries):
    recipe = dict(epochs=2, lr=0.05, image_size=16, dataset_options={"size": 40})  # 40 px images, trained at 16
    resized = run(_config(**recipe), tmp_path / "resized", quiet=True, registries=registries)
    upsampled = run(_config(**recipe, eval_image_size="upsampled"), tmp_path / "up", quiet=True,
                    registries=registries)
    native = run(_config(**recipe, eval_image_size="native"), tmp_path / "native", quiet=True,
                 registries=registries)
    assert resized.status == upsampled.status == native.status == "ok"
    # the same training (same seed); only the scoring differs: the resized masks, the original masks predicted
    # at the training scale, or the original masks predicted at a scale the model never saw
    assert len({resized.test_pooled["dice"], upsampled.test_pooled["dice"], native.test_pooled["dice"]}) == 3
    assert upsampled.test_pooled["dice"] > 0.5
    reloaded = evaluate_checkpoint(tmp_path / "up" / "best.safetensors", registries=registries)
    assert reloaded.pooled["dice"] == pytest.approx(upsampled.test_pooled["dice"], abs=1e-6)


class _BinaryOnlyPlugin:
    """A plugin metric that, like the example plugin's ``fbeta``, refuses anything but two classes."""

    @staticmethod
    def binary_only(*, num_classes, ignore_index=None, class_names=None):
        if num_classes != 2:
            raise OptionError(f"binary-only scores binary tasks only; num_classes={num_classes} (expected 2)")
        return object()

    @zoo.hookimpl
    def zoo_register_metrics(self):
        from zoo.interfaces import MetricSpec

        return [MetricSpec("binary-only", self.binary_only)]


def test_a_plugin_metric_that_refuses_a_dataset_is_left_out_of_the_default_set_only(registries, caplog):
    from types import SimpleNamespace

    from tests.zoo import engine_fakes
    from zoo.training.parts import build_metrics

    reg = zoo.api.load_registry(plugins=[engine_fakes, _BinaryOnlyPlugin()], autoload=False)
    three = SimpleNamespace(num_classes=3, ignore_index=None, class_names=["a", "b", "c"])
    two = SimpleNamespace(num_classes=2, ignore_index=None, class_names=["bg", "fg"])
    with caplog.at_level("WARNING"):
        assert sorted(build_metrics((), three, reg)) == ["dice"]
    assert "'binary-only' does not apply to this dataset" in caplog.text and "num_classes=3" in caplog.text
    assert sorted(build_metrics((), two, reg)) == ["binary-only", "dice"]
    with pytest.raises(OptionError, match="binary-only scores binary tasks only"):
        build_metrics(("dice", "binary-only"), three, reg)  # asked for by name: the error stands
