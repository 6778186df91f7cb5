"""Training budgets: parsing, and the steps a budget buys (compute budgets are matched across models)."""

from __future__ import annotations

import pytest

from zoo.budget import Budget, resolve_budget, training_tflops
from zoo.errors import OptionError


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("450 steps", "steps", 450), ("135tflops", "tflops", 135), ("tflops=2.5", "tflops", 2.5),
    ("20 Epochs", "epochs", 20), ("10 min", "minutes", 10), ("minutes: 3", "minutes", 3), ("1 step", "steps", 1),
])
def test_parse(text, kind, value):
    assert Budget.parse(text) == Budget(kind, value)


@pytest.mark.parametrize("text", ["450", "steps", "12 hours", "-3 steps", "0 tflops", "x=1"])
def test_parse_rejects_with_the_forms(text):
    with pytest.raises(OptionError, match="budget"):
        Budget.parse(text)


def test_bad_kind_names_the_kinds():
    with pytest.raises(OptionError, match="steps, epochs, minutes, tflops"):
        Budget("hours", 1)  # type: ignore[arg-type]


def test_training_tflops_is_gmacs_times_six_per_image():
    # FACTS: 450 steps x batch 4 at 512 px through a 12.1-GMAC U-Net is about 131 TFLOPs
    assert training_tflops(12.1, 450 * 4) == pytest.approx(130.68)


def test_each_kind_resolves_to_steps():
    common = {"gmacs_per_image": 12.1, "batch_size": 4, "train_items": 17}
    assert resolve_budget(Budget("steps", 450), **common).steps == 450
    assert resolve_budget(Budget("epochs", 10), **common).steps == 43  # ceil(170 / 4)
    compute = resolve_budget(Budget("tflops", 131), **common)
    assert compute.steps == 451 and compute.tflops <= 131 and compute.images == 1804
    timed = resolve_budget(Budget("minutes", 10), **common, tflops_per_second=0.2)
    assert timed.steps == resolve_budget(Budget("tflops", 120), **common).steps
    assert timed.tflops_per_second == 0.2 and compute.tflops_per_second is None
    with pytest.raises(OptionError, match="throughput"):
        resolve_budget(Budget("minutes", 10), **common)


def test_a_compute_budget_gives_a_heavier_model_fewer_steps():
    light = resolve_budget(Budget("tflops", 100), gmacs_per_image=5.0, batch_size=4, train_items=20)
    heavy = resolve_budget(Budget("tflops", 100), gmacs_per_image=12.0, batch_size=4, train_items=20)
    assert heavy.steps / light.steps == pytest.approx(1 / 2.4, rel=0.01)
    for r in (light, heavy):
        assert 0.9 * 100 <= r.tflops <= 100
    same = [resolve_budget(Budget("steps", 300), gmacs_per_image=g, batch_size=4, train_items=20).steps
            for g in (5.0, 12.0)]
    assert same == [300, 300]
