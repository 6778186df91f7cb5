"""Option parsing (command line, TOML) and validation against builder signatures."""

from __future__ import annotations

import pytest

from zoo.errors import OptionError
from zoo.options import load_toml, parse_assignments, parse_option_args, parse_value, validate_options


def builder(*, in_channels: int, num_classes: int, width: int = 64, up_mode: str = "transpose") -> None:
    """A builder."""


@pytest.mark.parametrize("text, value", [
    ("16", 16), ("0.5", 0.5), ("1e-3", 0.001), ("true", True), ("False", False), ("none", None),
    ("bilinear", "bilinear"), ("16,32,64", (16, 32, 64)), ("[1, 2]", (1, 2)), ("a,b", ("a", "b")),
    ("/data/x", "/data/x"),
])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_parse_option_args_forms():
    assert parse_option_args(["--width", "16", "--up-mode=bilinear", "--flag", "--depth", "3"]) == {
        "width": 16, "up_mode": "bilinear", "flag": True, "depth": 3}
    with pytest.raises(OptionError, match="unexpected argument '16'"):
        parse_option_args(["16"])


def test_parse_assignments():
    assert parse_assignments(["width=8", "up-mode=nearest"]) == {"width": 8, "up_mode": "nearest"}
    with pytest.raises(OptionError, match="'width' is not of the form NAME=VALUE"):
        parse_assignments(["width"])


def test_validate_options_normalises_names_and_lists_valid_ones():
    assert validate_options(builder, {"up-mode": "nearest"}, what="model 'x'",
                            exclude=("in_channels", "num_classes")) == {"up_mode": "nearest"}
    with pytest.raises(OptionError) as excinfo:
        validate_options(builder, {"bogus": 1}, what="model 'x'", exclude=("in_channels", "num_classes"))
    assert str(excinfo.value) == ("unknown option 'bogus' for model 'x'; valid options: width=64, "
                                  "up_mode='transpose'")


def test_load_toml(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('[model]\nwidth = 32\n[dataset]\nroot = "/data"\n')
    assert load_toml(path) == {"model": {"width": 32}, "dataset": {"root": "/data"}}
    path.write_text("[model\n")
    with pytest.raises(OptionError, match="is not valid TOML"):
        load_toml(path)
    with pytest.raises(OptionError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")
