"""zoo.seeding: the determinism policy and the up-front check for ops without a deterministic kernel.

CUDA's missing kernels are reproduced on the CPU with torch's own alert (``alert_not_deterministic``), raised
from the backward of a layer exactly where ``upsample_bilinear2d_backward_out_cuda`` raises on a GPU.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.zoo.engine_fakes import alerting_identity
from zoo.errors import OptionError
from zoo.seeding import check_deterministic_step, first_nondeterministic_op, resolve_deterministic


_BilinearLikeCuda = alerting_identity("upsample_bilinear2d_backward_out_cuda")


class _Net(nn.Module):
    def __init__(self, alert: bool) -> None:
        super().__init__()
        self.conv, self.bn, self.alert = nn.Conv2d(3, 2, 3, padding=1), nn.BatchNorm2d(2), alert

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return _BilinearLikeCuda.apply(x) if self.alert else x


def test_auto_is_deterministic_on_the_cpu_only() -> None:
    assert resolve_deterministic("auto", "cpu") is True
    assert resolve_deterministic("auto", torch.device("cuda")) is False
    assert resolve_deterministic("auto", "mps") is False
    assert resolve_deterministic(True, "cuda") is True and resolve_deterministic(False, "cpu") is False
    with pytest.raises(OptionError, match="'sometimes'"):
        resolve_deterministic("sometimes", "cpu")


def test_the_op_without_a_deterministic_kernel_is_named_and_the_setting_restored() -> None:
    def put() -> None:  # a real op without a deterministic kernel on any device
        torch.zeros(4).put_(torch.tensor([1]), torch.tensor([2.0]), accumulate=False)

    torch.use_deterministic_algorithms(False)
    assert first_nondeterministic_op(put) == "put_"
    assert first_nondeterministic_op(lambda: torch.zeros(2).add_(1)) is None
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError):  # other errors are the step's own
        first_nondeterministic_op(lambda: int("x"))


def test_the_step_check_names_the_op_and_leaves_no_trace() -> None:
    torch.manual_seed(0)
    model = _Net(alert=True).train()
    images, masks = torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 8, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    with pytest.raises(OptionError, match="unet-bilinear needs upsample_bilinear2d_backward_out_cuda, which has no "
                                          "deterministic kernel there; drop --deterministic"):
        check_deterministic_step(model, images, masks, nn.CrossEntropyLoss(), what="unet-bilinear")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm statistics untouched
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())

    fine = _Net(alert=False).train()
    check_deterministic_step(fine, images, masks, nn.CrossEntropyLoss())
    assert all(p.grad is None for p in fine.parameters())
