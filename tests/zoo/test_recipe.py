"""One recipe merge for `zoo train` and `zoo bench`: order, flags, and both commands agreeing."""

from __future__ import annotations

import dataclasses

import pytest

from zoo import api
from zoo.commands.train import TRAIN_DEFAULTS
from zoo.errors import OptionError
from zoo.recipe import merge_recipe, recipe_flags_layer


def test_later_layers_win_key_by_key_within_each_table():
    merged = merge_recipe({"train": {"lr": 1, "epochs": 2}, "model": {"width": 8}},
                          None, {"train": {"lr": 3}, "dataset": {"root": "x"}})
    assert merged == {"train": {"lr": 3, "epochs": 2}, "model": {"width": 8}, "dataset": {"root": "x"}}


def test_an_unknown_table_is_named():
    with pytest.raises(OptionError, match=r"\['optim'\].*\[train\], \[model\], \[dataset\]"):
        merge_recipe({"optim": {"lr": 1}})


def test_flags_drop_what_was_not_given_and_parse_what_was():
    layer = recipe_flags_layer({"lr": None, "compile": False, "tiled": True, "eval_image_size": "256"},
                               model_opt=["up_mode=bilinear"], dataset_opt=["fov=true"], metrics="dice, iou",
                               width=4)
    assert layer == {"train": {"tiled": True, "eval_image_size": 256, "metrics": ("dice", "iou")},
                     "model": {"up_mode": "bilinear", "width": 4}, "dataset": {"fov": True}}
    with pytest.raises(OptionError, match="'lrr' is not a recipe setting"):
        recipe_flags_layer({"lrr": 1})
    with pytest.raises(OptionError, match="'big' is not a number, 'native' or 'upsampled'"):
        recipe_flags_layer({"eval_image_size": "big"})


def test_train_and_bench_read_the_same_flags_the_same_way():
    flags = recipe_flags_layer({"lr": 0.01, "optimizer": "sgd", "max_steps": 7, "eval_image_size": "native"},
                               width=4, model_opt=["depth=3"])
    config = api.train_config(file={"train": {"lr": 0.5, "epochs": 3}}, flags={
        **flags, "train": {**flags["train"], "model": "unet", "dataset": "shapes"}})
    cell = api.bench_plan(models="unet", profile="quick", config={"train": {"lr": 0.5, "epochs": 3}},
                          recipe=flags).cells[0]
    for key in ("lr", "optimizer", "max_steps", "eval_image_size", "epochs"):
        assert cell.config[key] == getattr(config, key), key
    assert {k: cell.config["model_options"][k] for k in ("width", "depth")} == {"width": 4, "depth": 3}
    assert {k: config.model_options[k] for k in ("width", "depth")} == {"width": 4, "depth": 3}


def test_the_train_help_names_the_real_defaults():
    from zoo.training import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert {k: defaults[k] for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
