"""The U-Net family plugin: parameter counts, variants, padding, weights loading, option errors, CLI output."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torch import nn

from zoo import api
from zoo.cli import main
from zoo.errors import CheckpointError, OptionError, ZooError
from zoo.options import option_defaults
from zoo.testing import check_eval_determinism, check_model_plugin, check_no_layers_in_forward
from zoo_unet import plugin, resnet, unet
from zoo_unet.blocks import AttentionGate, UNetOptionError, UpSample
from zoo_unet.resnet import unet_resnet34
from zoo_unet.unet import PRESETS, UNET_DEFAULTS, UNet, unetpp

BUILDERS = {spec.name: spec.builder for spec in plugin.zoo_register_models()}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models gain nothing from a second thread, and on shared CI cores thread sync makes them crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(builder, **options) -> int:
    """Parameter count of a model built on the meta device (no memory, no init cost)."""
    options.setdefault("in_channels", 3)
    options.setdefault("num_classes", 1)
    with torch.device("meta"):
        return api.count_parameters(builder(**options))


# --- parameter counts -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("in_channels", "num_classes", "options", "expected"), [
    (3, 1, {}, 31_037_633),
    (3, 2, {}, 31_037_698),  # milesial/Pytorch-UNet's published figure
    (1, 2, {"batch_norm": False}, 31_030_658),  # the paper: convs with bias, no BN
])
def test_unet_parameter_counts(in_channels, num_classes, options, expected):
    assert n_params(unet.unet, in_channels=in_channels, num_classes=num_classes, **options) == expected


def test_counts_on_meta_match_a_real_build():
    real = unet.unet(in_channels=3, num_classes=1, width=8)
    assert api.count_parameters(real) == n_params(unet.unet, width=8)


def test_variant_ratios_at_width_64():
    base = n_params(unet.unet)
    attn = n_params(unet.unet_attn)
    assert 1.005 < attn / base < 1.02  # attention gates add about 1%
    assert n_params(unet.unet_bilinear) < base
    assert n_params(unet.unet_nearest) == n_params(unet.unet_bilinear)  # same 1x1 conv, other interpolation
    assert base < n_params(unet.unet_res) < 1.1 * base  # 1x1 shortcuts where the width changes
    assert base < n_params(unet.unet_scse) < 1.01 * base


def test_width_and_depth_scale_the_model():
    assert n_params(unet.unet, width=32) == pytest.approx(n_params(unet.unet) / 4, rel=0.01)
    assert n_params(unet.unet, depth=4) < n_params(unet.unet) / 3


def test_unetpp_deep_supervision_adds_one_head_per_top_node():
    plain, deep = n_params(unetpp, depth=4), n_params(unetpp, depth=4, deep_supervision=True)
    width = option_defaults(unetpp)["width"]
    assert deep - plain == 2 * (width * 1 + 1)  # heads on X[0][1], X[0][2] besides X[0][3]


# --- the skeleton and its variants ------------------------------------------------------------------------

def test_builder_defaults_are_the_presets():
    for name, preset in PRESETS.items():
        defaults = option_defaults(BUILDERS[name], exclude=("in_channels", "num_classes"))
        assert defaults == dict(UNET_DEFAULTS, **preset), name


def test_every_builder_is_documented_and_cites_a_paper():
    for name, builder in BUILDERS.items():
        assert "(" in inspect.getdoc(builder).splitlines()[0], name  # "(Author et al. YEAR)"
        assert all(p.kind is p.KEYWORD_ONLY for p in inspect.signature(builder).parameters.values()), name


def test_variants_are_the_same_class():
    models = [BUILDERS[n](in_channels=3, num_classes=1, width=4, depth=3) for n in PRESETS]
    assert {type(m) for m in models} == {UNet}


def test_bilinear_and_attention_compose():
    model = unet.unet(in_channels=3, num_classes=2, width=8, depth=3, up_mode="bilinear", gate="attention")
    assert all(stage.up.mode == "bilinear" and isinstance(stage.gate, AttentionGate) for stage in model.ups)
    gates = n_params(unet.unet_attn) - n_params(unet.unet)
    assert n_params(unet.unet, up_mode="bilinear", gate="attention") == n_params(unet.unet_bilinear) + gates
    out = model(torch.rand(2, 3, 40, 40))
    assert out.shape == (2, 2, 40, 40)


def test_flat_state_dict_keys():
    keys = unet.unet(in_channels=3, num_classes=1, width=4, depth=3).state_dict()
    assert {"encoder.stem.0.weight", "encoder.downs.1.1.3.weight", "ups.0.up.conv.weight", "head.weight"} <= set(keys)


@pytest.mark.parametrize("pad_mode", ["reflect", "zeros"])
def test_odd_sizes_are_padded_and_cropped_back(pad_mode):
    model = unet.unet(in_channels=1, num_classes=2, width=4, depth=4, pad_mode=pad_mode).eval()
    x = torch.rand(1, 1, 97, 131)
    # The documented rule: pad bottom/right to a multiple of 2**(depth-1) = 8, run, crop the top-left.
    padded = F.pad(x, (0, 5, 0, 7), mode="reflect" if pad_mode == "reflect" else "constant")
    with torch.no_grad():
        out = model(x)
        assert out.shape == (1, 2, 97, 131)
        torch.testing.assert_close(out, model(padded)[..., :97, :131])


def test_tiny_inputs_fall_back_to_replicate_padding():
    model = unet.unet(in_channels=3, num_classes=1, width=4, depth=5).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 3)).shape == (1, 1, 5, 3)


def test_blog_post_defects_are_absent():
    """Two eval forwards agree, and every module forward runs is a registered submodule."""
    model = unet.unet(in_channels=3, num_classes=1, width=16, depth=5).eval()
    x = torch.rand(1, 3, 64, 64)
    called: list[nn.Module] = []
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: called.append(m))
    try:
        with torch.no_grad():
            first, second = model(x), model(x)
    finally:
        handle.remove()
    assert torch.equal(first, second)
    registered = {id(m) for m in model.modules()}
    assert called and all(id(m) in registered for m in called)
    check_model_plugin(unet.unet, checks=(check_eval_determinism, check_no_layers_in_forward))


def test_pixelshuffle_starts_as_nearest_upsampling():
    """ICNR: each 2x2 output block starts uniform, so the sub-pixel conv has no checkerboard at init."""
    up = UpSample(8, 4, "pixelshuffle")
    out = up(torch.rand(1, 8, 6, 6))
    assert out.shape == (1, 4, 12, 12)
    torch.testing.assert_close(out, F.interpolate(out[..., ::2, ::2], scale_factor=2, mode="nearest"))


def test_unetpp_deep_supervision_returns_the_mean_of_the_heads():
    model = unetpp(in_channels=3, num_classes=2, width=4, depth=3, deep_supervision=True).eval()
    x = torch.rand(1, 3, 35, 33)
    with torch.no_grad():
        heads = model.forward_heads(x)
        out = model(x)
    assert len(heads) == 2 and out.shape == (1, 2, 35, 33)
    torch.testing.assert_close(out, torch.stack(heads).mean(0))


# --- ResNet-34 encoder weights ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet34_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet34(weights=None).state_dict()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_resnet34_loads_encoder_weights_from_a_local_file(tmp_path, resnet34_state, suffix):
    path = tmp_path / f"resnet34{suffix}"
    if suffix == ".safetensors":
        save_file(resnet34_state, str(path))
    else:
        torch.save(resnet34_state, path)
    model = unet_resnet34(in_channels=3, num_classes=1, depth=4, weights=str(path))
    encoder = model.encoder.state_dict()
    assert set(encoder) == {k for k in resnet34_state if k.startswith(("conv1.", "bn1.", "layer1.", "layer2."))}
    for key, value in encoder.items():
        assert torch.equal(value, resnet34_state[key]), key


def test_resnet34_adapts_rgb_weights_to_one_channel(tmp_path, resnet34_state):
    path = tmp_path / "w.pt"
    torch.save({"state_dict": resnet34_state}, path)
    model = unet_resnet34(in_channels=1, num_classes=1, depth=3, weights=str(path))
    torch.testing.assert_close(model.encoder.conv1.weight, resnet34_state["conv1.weight"].sum(1, keepdim=True))


def test_resnet34_weights_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        unet_resnet34(in_channels=3, num_classes=1, depth=3, weights=str(tmp_path / "missing.pt"))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read encoder weights"):
        unet_resnet34(in_channels=3, num_classes=1, depth=3, weights=str(garbage))
    pickled = tmp_path / "code.pt"
    torch.save({"conv1.weight": torch.zeros(1), "hook": nn.ReLU()}, pickled)  # needs full unpickling
    with pytest.raises(CheckpointError, match="cannot read encoder weights"):
        unet_resnet34(in_channels=3, num_classes=1, depth=3, weights=str(pickled))
    other = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)
    with pytest.raises(CheckpointError, match="not a torchvision ResNet-34 state dict"):
        unet_resnet34(in_channels=3, num_classes=1, weights=str(other))


def test_resnet34_default_layout():
    model = unet_resnet34(in_channels=3, num_classes=1, depth=3)
    assert tuple(stage.block[0].out_channels for stage in model.ups) == (32, 16)
    assert not hasattr(model.encoder, "layer3")
    assert n_params(resnet.unet_resnet34) > 21_000_000  # ResNet-34's body alone is 21.3 M


# --- errors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("builder", "options", "pattern"), [
    (unet.unet, {"up_mode": "bilnear"}, r"up_mode='bilnear' is not one of .*'bilinear'.*did you mean 'bilinear'"),
    (unet.unet, {"gate": "se"}, r"gate='se' is not one of \('attention', 'none'\)"),
    (unet.unet, {"block": "dense"}, r"block='dense' is not one of \('double-conv', 'residual'\)"),
    (unet.unet, {"decoder_attention": "cbam"}, r"decoder_attention='cbam'"),
    (unet.unet, {"pad_mode": "circular"}, r"pad_mode='circular' is not one of \('reflect', 'zeros'\)"),
    (unet.unet, {"width": 0}, r"width=0 must be an integer >= 1"),
    (unet.unet, {"depth": 1}, r"depth=1 must be an integer >= 2"),
    (unet.unet, {"in_channels": 0}, r"in_channels=0"),
    (unet.unet, {"num_classes": 0}, r"num_classes=0"),
    (unetpp, {"up_mode": "deconv"}, r"up_mode='deconv'"),
    (unet_resnet34, {"depth": 7}, r"depth=7 must be an integer from 2 to 6"),
])
def test_bad_options_raise_naming_value_and_choices(builder, options, pattern):
    kwargs = dict({"in_channels": 3, "num_classes": 1, "width": 4}, **options)
    with pytest.raises(UNetOptionError, match=pattern) as info:
        builder(**kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, OptionError)


# --- the command line -------------------------------------------------------------------------------------

def test_zoo_info_unet_prints_the_reference_count(capsys):
    assert main(["info", "unet", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "parameters:  31,037,633" in out
    assert "Ronneberger" in out


def test_zoo_info_composes_switches(capsys):
    argv = ["info", "unet", "--up-mode", "bilinear", "--gate", "attention", "--width", "8", "--image-size", "32"]
    assert main(argv) == 0
    expected = n_params(unet.unet, width=8, up_mode="bilinear", gate="attention")
    assert f"parameters:  {expected:,}" in capsys.readouterr().out


def test_zoo_info_bad_option_is_one_line(capsys):
    assert main(["info", "unet", "--up-mode", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "up_mode='bogus'" in err and "transpose" in err
    assert issubclass(UNetOptionError, ZooError)


def test_zoo_models_lists_the_family_with_descriptions(capsys):
    assert main(["models", "unet*"]) == 0
    out = capsys.readouterr().out
    for name, builder in BUILDERS.items():
        line = next(line for line in out.splitlines() if line.split()[0] == name)
        assert inspect.getdoc(builder).splitlines()[0] in line
