"""Property-based tests of what users type: recipe flags of ``zoo train`` and ``zoo bench``, leftover option
strings, TOML recipe files, and output paths.

The property, for every generated input: the command either accepts it, or fails with a ``ZooError`` whose
message is one line (the CLI prints it after ``zoo: error:`` and exits 2); never a traceback, and a refused
input writes nothing. Training itself is not run: each property stops where the command would start work
(``zoo.api.train`` / the first bench cell), so what is tested is every check in front of it.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo import api
from zoo.cli import main
from zoo.errors import ZooError
from zoo.recipe import RECIPE_FLAGS

from tests.properties.conftest import counted


class _Reached(Exception):
    """Raised where the command would start its real work: the input got through every check."""


def _one_line(message: str) -> None:
    assert message and "\n" not in message.strip() and "Traceback" not in message, repr(message)


def _run_cli(argv: list[str]) -> tuple[int | None, str]:
    """``main(argv)`` with its output captured; ``None`` when it got as far as starting work."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except _Reached:
            return None, err.getvalue()
        except SystemExit as exc:  # --help and friends; argparse's own exits never happen otherwise
            return int(exc.code or 0), err.getvalue()
    return code, err.getvalue()


def _check_cli_result(code: int | None, err: str) -> None:
    if code is None:
        return
    errors = [line for line in err.splitlines() if line.startswith("zoo: error:")]
    assert code == 2 and len(errors) == 1, (code, err)
    _one_line(errors[0])


@pytest.fixture(scope="module", autouse=True)
def _installed_registry():
    """The installed plugins, loaded once for the module (each example would otherwise reload them)."""
    api.reset_default_registry(api.load_registry())
    yield
    api.reset_default_registry()


# ---------------------------------------------------------------------------------------------------------------
# Values as a user might type them: numbers of every sign and size, NaN and infinities, words, lists, junk

NUMBER_TEXT = st.one_of(
    st.integers(-3, 64).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-0", "1e309", "-1e309", "nan", "inf", "-inf", "1_000", "0x10", "1.5", "3/4", "", " "]),
)
WORD_TEXT = st.one_of(
    st.sampled_from(["true", "false", "none", "adam", "adamw", "sgd", "cosine", "poly", "constant", "ce", "bce",
                     "dice+ce", "focal", "light", "strong", "none", "hflip+rot90", "native", "upsampled", "auto",
                     "cpu", "cuda", "fp32", "bf16", "fp16", "crop", "whole", "gaussian", "tent", "64x48", "0x0",
                     "1,2", "[1, 2]", "(0.9, 1.1)", "{[]: 1}", "((((", "'x'", "--", "-"]),
    st.text(max_size=12),
)
VALUE_TEXT = st.one_of(NUMBER_TEXT, WORD_TEXT)
FLAG_NAMES = [name.replace("_", "-") for name in RECIPE_FLAGS if name not in ("compile", "sync_bn")]
SWITCHES = ("channels-last", "deterministic", "tiled")


@st.composite
def recipe_flags(draw: st.DrawFn) -> list[str]:
    """A few recipe flags with user-typed values (switches take none)."""
    argv: list[str] = []
    for name in draw(st.lists(st.sampled_from(FLAG_NAMES + ["width", "seed", "model-opt", "dataset-opt",
                                                             "metrics"]), max_size=4)):
        if name in SWITCHES:
            argv.append(f"--{name}")
        elif name in ("model-opt", "dataset-opt"):
            argv += [f"--{name}", draw(st.one_of(st.builds("{}={}".format, st.sampled_from(
                ["width", "depth", "up_mode", "image_size", "train_items", "noise", "bogus"]), VALUE_TEXT),
                WORD_TEXT))]
        else:
            argv.append(f"--{name}={draw(VALUE_TEXT)}")
    return argv


@given(flags=recipe_flags())
@counted("train: recipe flags")
def test_train_flags_work_or_fail_in_one_line(flags):
    with mock.patch.object(api, "train", side_effect=_Reached):
        code, err = _run_cli(["train", "--model", "unet", "--dataset", "shapes", *flags, "--out", "/nonexistent/x"])
    _check_cli_result(code, err)


@given(flags=recipe_flags())
@counted("bench: recipe flags")
def test_bench_flags_work_or_fail_in_one_line(flags, tmp_path_factory):
    from zoo.bench import runner

    check = runner._check_settings

    def check_then_stop(cells):
        check(cells)
        raise _Reached

    out = tmp_path_factory.mktemp("bench")
    with mock.patch.object(runner, "_check_settings", check_then_stop):
        code, err = _run_cli(["bench", "--models", "unet", "--profile", "quick", *flags, "--out", str(out)])
    _check_cli_result(code, err)
    if code is not None:
        assert not any(out.iterdir()), "a refused bench wrote files"


# ---------------------------------------------------------------------------------------------------------------
# Leftover option strings: `zoo train ... --width 8 --up-mode bilinear`, routed to the model or the dataset

MODEL_OPTION_NAMES = ["width", "depth", "block", "up_mode", "gate", "decoder_attention", "batch_norm", "pad_mode"]
DATASET_OPTION_NAMES = ["image_size", "train_items", "num_classes", "channels", "max_shapes", "contrast", "noise"]


@st.composite
def option_tokens(draw: st.DrawFn) -> list[str]:
    tokens: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.sampled_from(MODEL_OPTION_NAMES + DATASET_OPTION_NAMES), st.text(max_size=8)))
        style = draw(st.sampled_from(["space", "equals", "bare", "junk"]))
        if style == "space":
            tokens += [f"--{name.replace('_', '-')}", draw(VALUE_TEXT)]
        elif style == "equals":
            tokens.append(f"--{name}={draw(VALUE_TEXT)}")
        elif style == "bare":
            tokens.append(f"--{name}")
        else:
            tokens.append(draw(VALUE_TEXT))
    return tokens


def _small(options: dict[str, Any]) -> bool:
    """Options whose model is cheap to build (any width or depth would be a valid, but huge, model)."""
    width, depth = options.get("width", 4), options.get("depth", 2)
    sizes = [v for v in (width, depth) if isinstance(v, int) and not isinstance(v, bool)]
    return all(-8 <= v <= 8 for v in sizes)


@given(tokens=option_tokens())
@counted("model/dataset option strings")
def test_option_strings_work_or_fail_in_one_line(tokens):
    try:
        options = api.parse_option_args(tokens)
        flags = api.recipe_flags_layer({})
        flags["train"].update(model="unet", dataset="shapes")
        config = api.train_config(flags=flags, options=options)
        model_options = {"width": 4, "depth": 2, **config.model_options}
        if _small(model_options):  # the builder gets the user's values: its refusals are one line too
            api.build_model("unet", in_channels=3, num_classes=2, **model_options)
    except ZooError as exc:
        _one_line(str(exc))


BUILD_TARGETS = [("dataset", "shapes"), ("dataset", "folder"), ("metric", "dice"), ("metric", "nsd"),
                 ("metric", "fbeta"), ("metric", "hd95"), ("model", "unet-attn"), ("model", "unet-res")]


@st.composite
def builder_options(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    """A dataset, metric or model with option strings named after its builder's own options (and a few others)."""
    from zoo.options import option_defaults
    from zoo.registry import METRIC_RESERVED, MODEL_RESERVED

    kind, name = draw(st.sampled_from(BUILD_TARGETS))
    spec = getattr(api.default_registry(), kind + "s").get(name)
    names = list(option_defaults(spec.builder, exclude=MODEL_RESERVED + METRIC_RESERVED)) or ["bogus"]
    tokens: list[str] = []
    for option in draw(st.lists(st.one_of(st.sampled_from(names), st.text(max_size=6)), max_size=3)):
        tokens += [f"--{option}", draw(VALUE_TEXT)]
    return kind, name, tokens


@given(target=builder_options())
@counted("model/dataset option strings")
def test_builders_refuse_bad_option_strings_in_one_line(target):
    kind, name, tokens = target
    try:
        options = api.parse_option_args(tokens)
        if kind == "model":
            options = {"width": 4, "depth": 2, **options}
            if not _small(options):
                return
            api.build_model(name, in_channels=3, num_classes=2, **options)
        elif kind == "dataset":
            api.build_dataset(name, **options)
        else:
            api.build_metric(name, num_classes=2, **options)
    except ZooError as exc:
        _one_line(str(exc))


@given(text=VALUE_TEXT)
@counted("option values (parse_value)")
def test_any_option_value_parses(text):
    from zoo.options import parse_value

    value = parse_value(text)
    assert value is not None or text.strip().lower() in ("none", "null")


# ---------------------------------------------------------------------------------------------------------------
# TOML recipe files: real tables with wrong types and values, other tables, and text that is not TOML

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"


TOML_SCALARS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans(), st.text(max_size=10),
                         st.sampled_from(["unet", "shapes", "adam", "cosine", "native", "ce", "cpu", "64x48"]))
TOML_VALUES = st.recursive(TOML_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
TRAIN_KEYS = st.sampled_from(["model", "dataset", "epochs", "lr", "batch_size", "image_size", "weight_decay",
                              "optimizer", "schedule", "loss", "augment", "grad_clip", "metrics", "seed", "device",
                              "precision", "eval_image_size", "patch_size", "scale_jitter", "foreground_share",
                              "compile", "deterministic", "model_options", "dataset_options", "bogus"])


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:  # not TOML at all
        return draw(st.text(max_size=40))
    lines: list[str] = []
    tables = draw(st.lists(st.sampled_from(["train", "model", "dataset", "extra"]), unique=True, max_size=3))
    for table in ["train", *[t for t in tables if t != "train"]]:
        lines.append(f"[{table}]")
        if table == "train":
            if draw(st.booleans()):
                lines.append('model = "unet"\ndataset = "shapes"')
            keys = draw(st.lists(TRAIN_KEYS, unique=True, max_size=4))
        else:
            keys = draw(st.lists(st.sampled_from(MODEL_OPTION_NAMES + DATASET_OPTION_NAMES + ["bogus"]),
                                 unique=True, max_size=3))
        lines += [f"{key} = {_toml_value(draw(TOML_VALUES))}" for key in keys]
    return "\n".join(lines) + "\n"


@given(document=toml_documents())
@counted("TOML recipe files")
def test_toml_recipes_work_or_fail_in_one_line(document, tmp_path_factory):
    path = tmp_path_factory.mktemp("toml") / "recipe.toml"
    path.write_text(document)
    try:
        api.train_config(file=api.load_toml(path), source=str(path))
    except ZooError as exc:
        _one_line(str(exc))


@given(data=st.binary(max_size=64))
@counted("TOML recipe files")
def test_a_binary_config_file_is_one_line(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("toml") / "recipe.toml"
    path.write_bytes(data)
    try:
        api.load_toml(path)
    except ZooError as exc:
        _one_line(str(exc))
        assert str(path) in str(exc)


# ---------------------------------------------------------------------------------------------------------------
# Output folders: an existing file, a folder inside a file, a non-empty foreign folder, a run folder

@st.composite
def output_trees(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    """Files to create (relative path -> "file"/"dir") and the --out path to try, relative to a fresh root."""
    kinds = {"out": draw(st.sampled_from(["absent", "file", "dir", "foreign", "run", "bench", "hidden"]))}
    nested = draw(st.booleans())
    return kinds, "out/sub" if nested else "out"


def _make(root: Path, kind: str) -> None:
    out = root / "out"
    if kind == "file":
        out.write_text("x")
    elif kind != "absent":
        out.mkdir()
        name = {"foreign": "thesis.tex", "run": "config.json", "bench": "plan.json", "hidden": ".DS_Store"}.get(kind)
        if name:
            (out / name).write_text("x")


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@given(tree=output_trees(), owner=st.sampled_from(["train", "bench", "predict"]))
@counted("output paths")
def test_output_folders_work_or_fail_in_one_line_leaving_nothing_behind(tree, owner, tmp_path_factory):
    from zoo.fileio import output_dir
    from zoo.training.loop import RUN_FILES

    kinds, relative = tree
    root = tmp_path_factory.mktemp("outs")
    _make(root, kinds["out"])
    before = _snapshot(root)
    owned = {"train": RUN_FILES, "bench": ("plan.json", "cells", "runs.csv"), "predict": None}[owner]
    try:
        path = output_dir(root / relative, owned=owned)
    except ZooError as exc:
        _one_line(str(exc))
        assert str(root / relative) in str(exc)
        assert _snapshot(root) == before, "a refused --out changed the file system"
    else:
        assert path.is_dir()
