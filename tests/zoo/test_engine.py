"""The loop's parts on their own: optimizers, schedules, precision, train_one_epoch, evaluate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zoo.engine import LoopState, build_optimizer, build_scheduler, evaluate, fit, train_one_epoch
from zoo.errors import OptionError, UnknownNameError
from zoo.precision import Precision, cpu_has_native_bf16

from tests.zoo.engine_fakes import conv_net, dice, squares


def _batches(n=3, size=16, seed=0):
    data = squares(items=n * 2, size=size).split("train")
    return [(data.images[i:i + 2], data.masks[i:i + 2]) for i in range(0, n * 2, 2)]


class _BCE(nn.Module):
    def forward(self, logits, target):
        return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target.float())


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizers_by_name(name):
    opt = build_optimizer(name, nn.Linear(2, 2).parameters(), lr=0.1, weight_decay=0.01)
    assert opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(UnknownNameError, match="adamw"):
        build_optimizer("adan", nn.Linear(2, 2).parameters(), lr=0.1)


def test_schedules_per_step():
    def lrs(name):
        opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
        sched = build_scheduler(name, opt, total_steps=10)
        out = []
        for _ in range(10):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out
    assert lrs("constant") == [1.0] * 10
    cos, poly = lrs("cosine"), lrs("poly")
    assert cos[0] == 1.0 and cos[5] == pytest.approx(0.5) and all(a > b for a, b in zip(cos, cos[1:]))
    assert poly[5] == pytest.approx(0.5 ** 0.9) and all(a > b for a, b in zip(poly, poly[1:]))


def test_precision_choices():
    p = Precision("cpu", "bf16", channels_last=True)
    model = p.module(nn.Conv2d(1, 2, 3))
    with p.autocast():
        out = model(p.tensor(torch.randn(1, 1, 8, 8)))
    assert out.dtype == torch.bfloat16 and model.weight.is_contiguous(memory_format=torch.channels_last)
    assert Precision("cpu", "auto").name == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(OptionError, match="fp16"):
        Precision("cpu", "fp16")
    with pytest.raises(UnknownNameError, match="bf16"):
        Precision("cpu", "int8")


def test_train_one_epoch_steps_and_lowers_the_loss():
    torch.manual_seed(0)
    model, loss_fn, prec = conv_net(in_channels=1, num_classes=1), _BCE(), Precision("cpu")
    opt = build_optimizer("adam", model.parameters(), lr=0.05)
    state = LoopState()
    first = train_one_epoch(model, _batches(), loss_fn, opt, precision=prec, state=state)
    for _ in range(5):
        last = train_one_epoch(model, _batches(), loss_fn, opt, precision=prec, state=state)
    assert state.step == 18 and first.steps == 3 and last.loss < first.loss and not last.diverged


def test_max_steps_stops_mid_epoch_and_clipping_bounds_the_update():
    torch.manual_seed(0)
    model, prec = conv_net(in_channels=1, num_classes=1), Precision("cpu")
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    state = LoopState()
    stats = train_one_epoch(model, _batches(), _BCE(), opt, precision=prec, state=state, max_steps=1,
                            grad_clip=1e-3)
    assert stats.steps == 1 and state.step == 1
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert float(moved) <= 1e-3 + 1e-6  # lr 1 x clipped norm


def test_a_single_nan_batch_is_skipped_not_stepped():
    model, prec = conv_net(in_channels=1, num_classes=1), Precision("cpu")
    batches = _batches()
    batches[1] = (batches[1][0] * float("nan"), batches[1][1])
    opt = build_optimizer("adam", model.parameters(), lr=0.01)
    state = LoopState()
    stats = train_one_epoch(model, batches, _BCE(), opt, precision=prec, state=state)
    assert stats.steps == 2 and state.nonfinite_total == 1 and not stats.diverged
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_evaluate_reports_pooled_per_image_and_nans():
    class Fixed(nn.Module):  # predicts exactly the mask, except an all-empty image
        def forward(self, x):
            return (x[:, :1] > 0.5).float() * 20 - 10

    images = torch.zeros(3, 1, 4, 4)
    masks = torch.zeros(3, 4, 4, dtype=torch.long)
    images[0, 0, :2] = 1; masks[0, :2] = 1          # perfect
    images[1, 0, :, :1] = 1; masks[1, :, :2] = 1    # half found: dice 2*4/(4+8)
    loader = [(images[:2], masks[:2]), (images[2:], masks[2:])]  # image 2: empty and predicted empty
    result = evaluate(Fixed(), loader, {"dice": dice(num_classes=2)}, precision=Precision("cpu"),
                      ids=["a", "b", "c"])
    assert result.n_images == 3 and result.nan_count == {"dice": 1}
    assert result.mean["dice"] == pytest.approx((1 + 8 / 12) / 2)
    assert result.pooled["dice"] == pytest.approx(2 * (8 + 4) / ((8 + 8) + (4 + 8)))
    assert [r[0] for r in result.rows] == ["a", "b", "c"] and math.isnan(result.rows[2][2])


def test_fit_validates_keeps_best_and_can_be_interrupted():
    torch.manual_seed(0)
    model, prec = conv_net(in_channels=1, num_classes=1), Precision("cpu")
    opt = build_optimizer("adam", model.parameters(), lr=0.05)
    scores = iter([0.3, 0.7, 0.5, 0.9])

    def validate():
        from zoo.engine import EvalResult
        return EvalResult(pooled={"dice": next(scores)})

    bests = []
    state = fit(model, lambda epoch: _batches(), _BCE(), opt, precision=prec, epochs=5, validate=validate,
                quiet=True, on_epoch_end=lambda s, r: bests.append(r.get("is_best", False)) or s.epoch == 3)
    assert state.status == "interrupted" and state.epoch == 3
    assert bests == [True, True, False] and state.best_epoch == 2 and state.best_score == 0.7
    state = fit(model, lambda epoch: _batches(), _BCE(), opt, precision=prec, epochs=4, validate=validate,
                quiet=True, state=state, higher_is_better=True)
    assert state.status == "ok" and state.best_epoch == 4 and len(state.history) == 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_cuda_mixed_precision_trains(name):
    torch.manual_seed(0)
    prec = Precision("cuda", name, channels_last=True)
    model = prec.module(conv_net(in_channels=1, num_classes=1))
    opt = build_optimizer("adam", model.parameters(), lr=0.05)
    state = LoopState()
    first = train_one_epoch(model, _batches(), _BCE(), opt, precision=prec, state=state)
    for _ in range(5):
        last = train_one_epoch(model, _batches(), _BCE(), opt, precision=prec, state=state)
    assert last.loss < first.loss and prec.scaler.is_enabled() == (name == "fp16")
    assert state.step == 18 and prec.skipped_steps < 18


def test_evaluate_backs_off_on_out_of_memory_to_the_same_scores():
    class Fixed(nn.Module):  # predicts the mask; "runs out of memory" (a cuDNN allocation failure) above 1 image
        def __init__(self, limit: int | None) -> None:
            super().__init__()
            self.limit, self.passes = limit, []

        def forward(self, x):
            self.passes.append(x.shape[0])
            if self.limit is not None and x.shape[0] > self.limit:
                raise RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")
            return (x[:, :1] > 0.5).float() * 20 - 10

    torch.manual_seed(0)
    images = (torch.rand(6, 1, 8, 8) > 0.5).float()
    masks = images[:, 0].long()
    loader = [(images[:4], masks[:4]), (images[4:], masks[4:])]
    whole = evaluate(Fixed(None), loader, {"dice": dice(num_classes=2)}, precision=Precision("cpu"), loss_fn=_BCE())
    tight = Fixed(1)
    backed = evaluate(tight, loader, {"dice": dice(num_classes=2)}, precision=Precision("cpu"), loss_fn=_BCE())
    assert backed.pooled == whole.pooled and backed.rows == whole.rows and backed.loss == pytest.approx(whole.loss)
    assert tight.passes == [4, 2, 1, 1, 1, 1, 1, 1]  # halved twice, then kept for the rest of the split
    with pytest.raises(RuntimeError, match="CUDNN_STATUS_ALLOC_FAILED"):
        evaluate(Fixed(0), loader, {"dice": dice(num_classes=2)}, precision=Precision("cpu"))


def test_train_step_backs_off_on_cudnn_allocation_failures_and_times_the_loader():
    class Tight(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            if x.shape[0] > 2:
                raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
            return self.conv(x)

    model, state = Tight(), LoopState()
    batches = [(torch.rand(4, 1, 4, 4), torch.randint(0, 2, (4, 4, 4))) for _ in range(2)]
    opt = build_optimizer("sgd", model.parameters(), lr=0.1)
    stats = train_one_epoch(model, batches, _BCE(), opt, precision=Precision("cpu"), state=state)
    assert stats.steps == 2 and state.micro_batch == 2 and state.oom_backoffs == 1
    assert 0 <= stats.data_seconds <= stats.seconds


class _DictNet(nn.Module):
    """torchvision's output convention: ``{"out": logits}``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = conv_net(in_channels=1, num_classes=1)

    def forward(self, x):
        return {"out": self.net(x)}


def test_the_engine_checks_every_forward_it_consumes_against_the_output_contract():
    from zoo.errors import ModelContractError
    from zoo.inference import predict_logits

    model = _DictNet()
    opt = build_optimizer("adam", model.parameters(), lr=0.01)
    expected = r"forward returned a dict with keys \['out'\]; the model contract expects one floating-point Tensor"
    with pytest.raises(ModelContractError, match=expected):
        train_one_epoch(model, _batches(), _BCE(), opt, precision=Precision("cpu", "fp32"))
    with pytest.raises(ModelContractError, match=expected):
        evaluate(model, _batches(), {"dice": dice(num_classes=2)}, precision=Precision("cpu", "fp32"))
    with pytest.raises(ModelContractError, match=r"shape \(1, 1, 32, 32\) and dtype int64; .*raw logits, not class indices"):
        predict_logits(lambda x: x.argmax(1, keepdim=True), torch.rand(1, 2, 8, 8))
    with pytest.raises(ModelContractError, match=r"shape \(1, 2, 4, 4\) and dtype float32; .* = \(1, num_classes, 32, 32\)"):
        predict_logits(lambda x: x[..., ::8, ::8], torch.rand(1, 2, 8, 8))


def test_a_contract_error_names_the_model_and_its_plugin():
    from zoo.errors import ModelContractError
    from zoo.training.parts import model_contract_named

    meta = {"model": "tv-deeplab", "plugin": {"name": "tv", "distribution": "zoo-tv", "version": "0.2"}}
    with pytest.raises(ModelContractError, match=r"^model 'tv-deeplab' from plugin 'tv' \(zoo-tv 0.2\): forward "):
        with model_contract_named(meta):
            predict_logits_of(_DictNet())


def predict_logits_of(model):
    from zoo.inference import predict_logits

    return predict_logits(model, torch.rand(1, 1, 16, 16))
