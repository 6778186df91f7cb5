"""``zoo.testing`` catches real defects and names them: broken models, datasets and metrics fed to the kit."""

from __future__ import annotations

import math
import types

import pytest
import torch
from torch import nn

import zoo
from zoo import api
from zoo.data import BaseDataset, CachedSplit
from zoo.interfaces import DatasetSpec, MetricSpec, ModelSpec
from zoo.testing import (
    DATASET_CHECKS,
    METRIC_CHECKS,
    MODEL_CHECKS,
    CheckFailed,
    check_dataset_plugin,
    check_metric_plugin,
    check_model_plugin,
    check_name,
    parametrize_with_checks,
    specs_of,
)


def _failed(results) -> set[str]:
    return {r.name for r in results if r.status == "failed"}


# --- models -------------------------------------------------------------------------------------------------

class _BuildsInForward(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.Conv2d(4, self.num_classes, 1)(self.conv(x))  # the blog post's defect


def builds_in_forward(*, in_channels: int, num_classes: int) -> nn.Module:
    """A layer built inside forward()."""
    return _BuildsInForward(in_channels, num_classes)


def wrong_output_shape(*, in_channels: int, num_classes: int) -> nn.Module:
    """Logits at half resolution."""
    return nn.Conv2d(in_channels, num_classes, 3, stride=2, padding=1)


def ignores_num_classes(*, in_channels: int, num_classes: int) -> nn.Module:
    """Always two output channels."""
    return nn.Conv2d(in_channels, 2, 3, padding=1)


def good_model(*, in_channels: int, num_classes: int, width: int = 4) -> nn.Module:
    """A correct two-layer FCN."""
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, num_classes, 1))


def test_a_correct_model_passes_every_check():
    results = check_model_plugin(good_model)
    assert [r.name for r in results] == [check_name(c) for c in MODEL_CHECKS]
    assert _failed(results) == set()


def test_the_kit_catches_a_layer_built_in_forward():
    failed = _failed(check_model_plugin(builds_in_forward, raise_on_failure=False))
    assert {"no-layers-in-forward", "eval-determinism", "state-dict-round-trip"} <= failed
    with pytest.raises(CheckFailed, match=r"failed check 'no-layers-in-forward': .*registered new layers"):
        check_model_plugin(builds_in_forward)


def test_the_kit_catches_a_wrong_output_shape():
    with pytest.raises(CheckFailed, match=r"builder wrong_output_shape failed check 'output-shape'.*"
                                          r"in_channels=3, num_classes=2: forward returned a Tensor of shape "
                                          r"\(2, 2, 16, 24\) and dtype float32; the model contract expects one "
                                          r"floating-point Tensor of raw logits \(N, num_classes, H, W\) = "
                                          r"\(2, 2, 32, 48\)"):
        check_model_plugin(wrong_output_shape)


def test_the_kit_catches_a_wrong_output_size_at_odd_sizes_too_and_fails_as_an_assertion():
    failed = _failed(check_model_plugin(wrong_output_shape, raise_on_failure=False))
    assert {"output-shape", "odd-input-size"} <= failed
    with pytest.raises(AssertionError):  # CheckFailed is an AssertionError, so plain pytest reports it well
        check_model_plugin(wrong_output_shape)


class _UsedOnly(nn.ModuleDict):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self["used"](x)


def unused_parameter_model(*, in_channels: int, num_classes: int) -> nn.Module:
    """A model with a parameter that forward never uses."""
    return _UsedOnly({"used": nn.Conv2d(in_channels, num_classes, 1), "unused": nn.Linear(2, 2)})


def test_the_kit_catches_a_parameter_without_gradient():
    assert _failed(check_model_plugin(unused_parameter_model, raise_on_failure=False)) == {"backward"}


def test_the_kit_catches_a_model_that_ignores_num_classes():
    results = check_model_plugin(ignores_num_classes, raise_on_failure=False)
    assert _failed(results) == {"output-shape"}
    error = next(r.error for r in results if r.status == "failed")
    assert "num_classes=1" in str(error) and "(N, num_classes, H, W) = (2, 1, 32, 48)" in str(error)


class _Unpools(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.unpool(*self.pool(y), output_size=y.shape[-2:])


def unpools(*, in_channels: int, num_classes: int) -> nn.Module:
    """SegNet's MaxUnpool2d: no deterministic implementation."""
    return _Unpools(in_channels, num_classes)


def test_the_kit_catches_an_op_without_a_deterministic_implementation():
    results = check_model_plugin(unpools, raise_on_failure=False)
    assert _failed(results) == {"deterministic-algorithms"}
    assert "max_unpooling2d" in str(next(r.error for r in results if r.status == "failed"))
    assert not torch.are_deterministic_algorithms_enabled()  # the caller's setting is restored


# --- datasets -----------------------------------------------------------------------------------------------

def _split(prefix: str, count: int, *, size: int = 8, mask_value: int = 1) -> CachedSplit:
    def load(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.full((3, size, size), 10 * i, dtype=torch.uint8)
        mask = torch.zeros(size, size, dtype=torch.uint8)
        mask[: size // 2] = mask_value
        return image, mask
    return CachedSplit([f"{prefix}{i}" for i in range(count)], load)


def _dataset(**splits: CachedSplit) -> BaseDataset:
    defaults = {"train": _split("a", 3), "val": _split("b", 2), "test": _split("c", 2)}
    return BaseDataset(name="toy", in_channels=3, num_classes=2, class_names=("bg", "fg"), ignore_index=None,
                       splits={**defaults, **splits}, split_source="test")


def good_dataset() -> BaseDataset:
    """A correct toy dataset."""
    return _dataset()


def overlapping_splits() -> BaseDataset:
    """Test ids that are also training ids."""
    return _dataset(test=_split("a", 2))


def empty_val() -> BaseDataset:
    """No validation items."""
    return _dataset(val=_split("b", 0))


def bad_mask_values() -> BaseDataset:
    """Mask value 7 in a 2-class dataset."""
    return _dataset(train=_split("a", 3, mask_value=7))


class _Random:
    in_channels, num_classes, class_names, ignore_index = 1, 2, ("bg", "fg"), None

    def split(self, name: str) -> object:
        class Split:
            ids = [f"{name}{i}" for i in range(2)]

            def __len__(self) -> int:
                return 2

            def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
                return torch.rand(1, 8, 8), torch.randint(0, 2, (8, 8))
        return Split()


def random_items() -> _Random:
    """Different pixels at every access."""
    return _Random()


def test_a_correct_dataset_passes_every_check():
    results = check_dataset_plugin(good_dataset)
    assert [r.name for r in results] == [check_name(c) for c in DATASET_CHECKS]
    assert _failed(results) == set()


def test_the_kit_catches_overlapping_splits():
    results = check_dataset_plugin(overlapping_splits, raise_on_failure=False)
    assert _failed(results) == {"splits"}
    with pytest.raises(CheckFailed, match=r"failed check 'splits'.*'train' and 'test' share 2 ids, e.g. \['a0', 'a1'\]"):
        check_dataset_plugin(overlapping_splits)


def test_the_kit_catches_an_empty_split_bad_mask_values_and_nondeterminism():
    assert "splits" in _failed(check_dataset_plugin(empty_val, raise_on_failure=False))
    with pytest.raises(CheckFailed, match=r"'items'.*mask values \[7\] are neither classes in \[0, 2\)"):
        check_dataset_plugin(bad_mask_values)
    with pytest.raises(CheckFailed, match=r"'determinism'.*differs when read twice"):
        check_dataset_plugin(random_items)


def test_the_kit_compares_items_with_the_spec():
    spec = DatasetSpec("toy", good_dataset, in_channels=1, num_classes=2)
    with pytest.raises(CheckFailed, match=r"dataset 'toy' failed check 'metadata'.*declares in_channels=1"):
        check_dataset_plugin(spec)


# --- metrics ------------------------------------------------------------------------------------------------

class _Dice:
    """Binary Dice per image; ``empty`` is what it returns when both masks are empty."""

    def __init__(self, empty: float) -> None:
        self.empty = empty
        self.reset()

    def _dice(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
        denominator = (2 * tp + fp + fn).double()
        return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.full_like(denominator, self.empty))

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        keep = target != 255
        p, t = (pred == 1) & keep, (target == 1) & keep
        tp, fp, fn = ((p & t).flatten(1).sum(1), (p & ~t).flatten(1).sum(1), (~p & t).flatten(1).sum(1))
        self.counts += torch.stack([tp.sum(), fp.sum(), fn.sum()])
        return {"dice": self._dice(tp, fp, fn)}

    def compute(self) -> dict[str, float]:
        return {"dice": float(self._dice(*self.counts))}

    def reset(self) -> None:
        self.counts = torch.zeros(3, dtype=torch.int64)


def nan_dice(*, num_classes: int, ignore_index: int | None = None, class_names=None) -> _Dice:
    """Dice, NaN when undefined."""
    return _Dice(math.nan)


def one_on_empty_dice(*, num_classes: int, ignore_index: int | None = None, class_names=None) -> _Dice:
    """Dice that scores 1.0 when both masks are empty."""
    return _Dice(1.0)


class _NoReset(_Dice):
    def reset(self) -> None:
        if not hasattr(self, "counts"):
            super().reset()


def no_reset_dice(*, num_classes: int, ignore_index: int | None = None, class_names=None) -> _Dice:
    """Dice whose reset does nothing."""
    return _NoReset(math.nan)


def test_a_correct_metric_passes_every_check():
    results = check_metric_plugin(MetricSpec("my-dice", nan_dice))
    assert [r.name for r in results] == [check_name(c) for c in METRIC_CHECKS]
    assert _failed(results) == set()


def test_the_kit_catches_a_metric_that_returns_one_on_empty_masks():
    results = check_metric_plugin(one_on_empty_dice, raise_on_failure=False)
    assert _failed(results) == {"both-empty"}
    with pytest.raises(CheckFailed, match=r"one_on_empty_dice failed check 'both-empty'.*scores 1.0 per image"):
        check_metric_plugin(one_on_empty_dice)


def test_the_kit_catches_a_broken_reset_and_a_constant_metric():
    assert _failed(check_metric_plugin(no_reset_dice, raise_on_failure=False)) == {"reset"}
    assert {"total-miss"} <= _failed(check_metric_plugin(nan_dice, higher_is_better=False, best=1.0,
                                                         raise_on_failure=False))


def test_the_builtin_accuracy_fails_the_default_empty_rule_it_documents_otherwise():
    reg = api.load_registry()
    assert _failed(check_metric_plugin("accuracy", registries=reg, raise_on_failure=False)) == {"both-empty"}
    assert _failed(check_metric_plugin("accuracy", registries=reg, both_empty=1.0, raise_on_failure=False)) == set()


# --- the pytest helper --------------------------------------------------------------------------------------

def _plugin_module() -> types.ModuleType:
    module = types.ModuleType("kit_test_plugin")

    @zoo.hookimpl
    def zoo_register_models():
        return [ModelSpec("good-model", good_model)]

    @zoo.hookimpl
    def zoo_register_datasets():
        return [DatasetSpec("good-dataset", good_dataset, in_channels=3, num_classes=2)]

    @zoo.hookimpl
    def zoo_register_metrics():
        return [MetricSpec("my-dice", nan_dice)]

    module.zoo_register_models = zoo_register_models
    module.zoo_register_datasets = zoo_register_datasets
    module.zoo_register_metrics = zoo_register_metrics
    return module


PLUGIN = _plugin_module()


def test_specs_of_calls_the_hooks():
    assert [s.name for s in specs_of(PLUGIN)] == ["good-model", "good-dataset", "my-dice"]


def test_parametrize_with_checks_ids_cover_every_kind_and_check():
    mark = parametrize_with_checks(PLUGIN, metrics=["dice"])
    ids = [p.id for p in mark.args[1]]
    assert ids[0] == "model:good-model:output-shape"
    assert len(ids) == len(MODEL_CHECKS) + len(DATASET_CHECKS) + 2 * len(METRIC_CHECKS)
    assert "dataset:good-dataset:splits" in ids and "metric:dice:both-empty" in ids


@parametrize_with_checks(PLUGIN)
def test_a_plugin_module_through_the_helper(plugin, check):
    check(plugin)


def test_a_failing_check_through_the_helper_raises_checkfailed():
    mark = parametrize_with_checks(MetricSpec("bad", one_on_empty_dice))
    (plugin, check), = [p.values for p in mark.args[1] if p.id == "metric:bad:both-empty"]
    with pytest.raises(CheckFailed, match="metric 'bad' failed check 'both-empty'"):
        check(plugin)


def test_the_helper_takes_bare_builders_named_by_their_function():
    mark = parametrize_with_checks(models=[good_model], datasets=[good_dataset], metrics=[nan_dice])
    ids = [p.id for p in mark.args[1]]
    assert ids[0] == "model:good_model:output-shape"
    assert "dataset:good_dataset:determinism" in ids and "metric:nan_dice:reset" in ids
    assert len(ids) == len(MODEL_CHECKS) + len(DATASET_CHECKS) + len(METRIC_CHECKS)


def test_the_helper_passes_overrides_to_the_check_function():
    mark = parametrize_with_checks(models=[wrong_output_shape, good_model],
                                   overrides={"good_model": {"in_channels": 1, "options": {"width": 2}}})
    params = {p.id: p.values for p in mark.args[1]}
    plugin, check = params["model:good_model:output-shape"]
    check(plugin)
    assert check.kwargs == {"in_channels": 1, "options": {"width": 2}}
    plugin, check = params["model:wrong_output_shape:odd-input-size"]
    with pytest.raises(CheckFailed, match="model builder wrong_output_shape failed check 'odd-input-size'"):
        check(plugin)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA check runs where CUDA is available")
def test_a_check_that_does_not_apply_is_a_pytest_skip():
    mark = parametrize_with_checks(models=[good_model])
    (plugin, check), = [p.values for p in mark.args[1] if p.id == "model:good_model:to-cuda"]
    with pytest.raises(pytest.skip.Exception, match="CUDA is not available"):
        check(plugin)


def test_there_is_one_parametrize_helper():
    import zoo.testing

    assert [name for name in zoo.testing.__all__ if name.startswith("parametrize")] == ["parametrize_with_checks"]


class _PutNet(nn.Module):
    """Uses ``Tensor.put_``, which has no deterministic kernel on any device."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        flat = torch.zeros(out.numel(), device=x.device)
        flat.put_(torch.tensor([0], device=x.device), torch.tensor([1.0], device=x.device), accumulate=False)
        return out + flat.view_as(out)


def put_net(*, in_channels: int, num_classes: int) -> nn.Module:
    """A model with an op lacking deterministic kernels (test fake)."""
    return _PutNet(in_channels, num_classes)


def test_determinism_checks_name_the_op_and_say_which_device():
    from zoo.testing import check_cuda_determinism, check_deterministic_algorithms, check_model_plugin

    results = check_model_plugin(put_net, checks=(check_deterministic_algorithms, check_cuda_determinism),
                                 raise_on_failure=False)
    cpu, cuda = results
    assert cpu.status == "failed" and "put_ has no deterministic CPU kernel" in str(cpu.error)
    if not torch.cuda.is_available():
        assert cuda.status == "skipped" and "CUDA is not available" in str(cuda.error)


# --- the kit never passes green on nothing, and speaks contract words ------------------------------------------

class _DictOut(nn.Module):
    """Returns torchvision's ``{"out": logits, "aux": ...}``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.head(x)
        return {"out": out, "aux": out}


def dict_model(*, in_channels: int, num_classes: int) -> nn.Module:
    """A torchvision-style model returning a dict."""
    return _DictOut(in_channels, num_classes)


def test_a_dict_output_fails_once_in_contract_words_and_the_other_checks_say_why_they_did_not_run():
    results = {r.name: r for r in check_model_plugin(dict_model, raise_on_failure=False)}
    assert _failed(results.values()) == {"output-shape"}
    message = str(results["output-shape"].error)
    assert "forward returned a dict with keys ['out', 'aux']; the model contract expects one floating-point " \
           "Tensor of raw logits (N, num_classes, H, W)" in message
    assert "torchvision's segmentation models do): wrap the model and return out['out'] from forward" in message
    assert "has no attribute" not in message
    skipped = [r for r in results.values() if r.status == "skipped" and "CUDA" not in str(r.error)]
    assert len(skipped) == len(MODEL_CHECKS) - 1 - (2 if not torch.cuda.is_available() else 0)
    assert all("not run: the model breaks the output contract" in str(r.error) for r in skipped)


class _PooledNorm(nn.Module):
    """Global pooling then BatchNorm1d: fine at batch 2, fails on a training batch of one."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.norm = nn.BatchNorm1d(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out + self.norm(out.mean((2, 3)))[..., None, None]


def pooled_norm(*, in_channels: int, num_classes: int) -> nn.Module:
    """Batch norm after global pooling (a squeeze-and-excitation-like head)."""
    return _PooledNorm(in_channels, num_classes)


def test_the_kit_catches_a_model_that_cannot_train_on_a_batch_of_one():
    failed = _failed(check_model_plugin(pooled_norm, raise_on_failure=False))
    assert failed == {"train-batch-of-one"}
    with pytest.raises(CheckFailed, match=r"batch of one image \(zoo train --batch-size 1\) raised ValueError: "
                                          r"Expected more than 1 value per channel.*use GroupNorm"):
        check_model_plugin(pooled_norm)


def _module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, zoo.hookimpl(function))
    return module


def test_a_misspelled_hook_fails_the_kit_with_the_load_error():
    module = _module("typo_plugin", zoo_register_model=lambda: [ModelSpec("good-model", good_model)])
    params = parametrize_with_checks(module).args[1]
    assert [p.id for p in params] == ["plugin:typo_plugin:loads"]
    plugin, check = params[0].values
    with pytest.raises(CheckFailed, match=r"unknown hook 'zoo_register_model' \(did you mean "
                                          r"'zoo_register_models'\?\).*zoo.testing checked nothing"):
        check(plugin)


def test_an_empty_hook_or_nothing_at_all_fails_the_kit():
    module = _module("empty_plugin", zoo_register_models=lambda: [])
    (param,) = parametrize_with_checks(module).args[1]
    with pytest.raises(CheckFailed, match=r"plugin 'empty_plugin' registers no model, dataset or metric "
                                          r"\(zoo_register_models\)"):
        param.values[1](param.values[0])
    (param,) = parametrize_with_checks().args[1]
    assert param.id == "nothing-to-check"
    with pytest.raises(CheckFailed, match="given nothing to check"):
        param.values[1](param.values[0])


def test_a_plugin_the_registry_would_refuse_fails_the_kit_next_to_its_checks():
    def sloppy(*, in_channels: int, num_classes: int, **kwargs) -> nn.Module:
        """Swallows options."""
        return good_model(in_channels=in_channels, num_classes=num_classes)

    module = _module("sloppy_plugin", zoo_register_models=lambda: [ModelSpec("sloppy", sloppy)])
    params = {p.id: p.values for p in parametrize_with_checks(module).args[1]}
    plugin, check = params["plugin:sloppy_plugin:loads"]
    with pytest.raises(CheckFailed, match=r"takes \*\*kwargs"):
        check(plugin)


@pytest.mark.slow
def test_a_plugin_package_with_a_misspelled_hook_fails_its_own_pytest_run(tmp_path):
    """As a plugin author sees it: the kit's one-line test file, run by pytest, exits non-zero with the error."""
    import subprocess
    import sys

    (tmp_path / "typo_net.py").write_text(
        "import torch\nimport zoo\nfrom zoo.interfaces import ModelSpec\n\n"
        "def net(*, in_channels: int, num_classes: int):\n    \"\"\"A net.\"\"\"\n"
        "    return torch.nn.Conv2d(in_channels, num_classes, 1)\n\n"
        "@zoo.hookimpl\ndef zoo_register_model():\n    return [ModelSpec('typo-net', net)]\n")
    (tmp_path / "test_contract.py").write_text(
        "import typo_net\nfrom zoo.testing import parametrize_with_checks\n\n"
        "@parametrize_with_checks(typo_net)\ndef test_zoo_contract(plugin, check):\n    check(plugin)\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                             str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_contract.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout and "skipped" not in result.stdout
    assert "did you mean 'zoo_register_models'" in result.stdout


class _ThreeChannelsOnly(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)  # ignores in_channels, as a wrapped library model may

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def three_channels_only(*, in_channels: int, num_classes: int) -> nn.Module:
    """Always a 3-channel stem."""
    return _ThreeChannelsOnly(num_classes)


def test_a_builder_that_ignores_in_channels_is_told_the_contract():
    with pytest.raises(CheckFailed, match=r"in_channels=1, num_classes=1: forward raised RuntimeError: .*; the model "
                                          r"contract: the builder builds for any in_channels \(1 for grayscale\)"):
        check_model_plugin(three_channels_only)
