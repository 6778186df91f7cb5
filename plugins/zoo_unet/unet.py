"""The U-Net family: one configurable U-Net skeleton, UNet++, and their registered builders.

``UNet`` is the U-Net of Ronneberger et al. (2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation") with the conv block, the skip gate, the decoder attention and the upsampling mode injected, so the
variants are the same class with different options:

=====================  =========================================================================
``unet``               the reference U-Net (BN, bias-free convs, transposed-conv upsampling)
``unet-attn``          + additive attention gates on the skips (Oktay et al., 2018)
``unet-res``           residual blocks (Zhang et al., 2018; He et al., 2016)
``unet-bilinear``      bilinear interpolation + 1x1 conv instead of transposed convs
``unet-nearest``       nearest-neighbour interpolation + 1x1 conv
``unet-pixelshuffle``  sub-pixel conv upsampling (Shi et al., 2016) with ICNR init (Aitken et al., 2017)
``unet-scse``          scSE attention after each decoder block (Roy et al., 2018)
``unetpp``             UNet++ nested dense skips (Zhou et al., 2018), optional deep supervision
=====================  =========================================================================

``unet-resnet34`` (a torchvision ResNet-34 encoder) lives in ``resnet.py``.

Any input size works: the models pad the input at the bottom and right up to a multiple of ``2**(depth-1)``
(reflect padding by default, see ``pad_to_multiple``) and crop the logits back to the input's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from zoo.interfaces import ModelSpec
from zoo_unet.blocks import (
    PAD_MODES,
    SCSE,
    AttentionGate,
    DoubleConv,
    PadMode,
    ResidualBlock,
    UNetOptionError,
    UpMode,
    UpSample,
    choose,
    pad_to_multiple,
    positive_int,
)

__all__ = [
    "BLOCKS",
    "GATES",
    "DECODER_ATTENTIONS",
    "UNET_DEFAULTS",
    "PRESETS",
    "Encoder",
    "DecoderStage",
    "UNet",
    "UNetPlusPlus",
    "unet",
    "unet_attn",
    "unet_res",
    "unet_bilinear",
    "unet_nearest",
    "unet_pixelshuffle",
    "unet_scse",
    "unetpp",
    "MODELS",
]

BLOCKS: dict[str, type[nn.Module]] = {"double-conv": DoubleConv, "residual": ResidualBlock}
GATES: dict[str, type[nn.Module]] = {"attention": AttentionGate}
DECODER_ATTENTIONS: dict[str, type[nn.Module]] = {"scse": SCSE}

BlockArg = str | type[nn.Module]
OptionalLayerArg = str | type[nn.Module] | None


def _resolve(option: str, value: Any, table: Mapping[str, type[nn.Module]], *, optional: bool) -> Any:
    """Map an option value (a name from ``table``, a module class, or None/"none") to a class or None."""
    if optional and (value is None or value == "none"):
        return None
    if isinstance(value, type) and issubclass(value, nn.Module):
        return value
    return table[choose(option, value, (*table, "none") if optional else tuple(table))]


class Encoder(nn.Module):
    """The U-Net contracting path: a stem block, then (2x2 max-pool -> block) per level.

    Args:
        in_channels: image channels.
        widths: output channels per level; ``len(widths)`` levels.
        block: the conv block class, called as ``block(in, out, batch_norm=...)``.
        batch_norm: passed to the blocks.

    ``forward`` returns one feature map per level, at strides ``1, 2, ..., 2**(len(widths)-1)``, whose
    channels are ``self.channels``.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], *, block: type[nn.Module] = DoubleConv,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.channels = tuple(widths)
        self.stem = block(in_channels, widths[0], batch_norm=batch_norm)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), block(c_in, c_out, batch_norm=batch_norm))
            for c_in, c_out in zip(widths[:-1], widths[1:])
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        features = [self.stem(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        return features


class DecoderStage(nn.Module):
    """One U-Net expanding step: upsample, (gate the skip), concatenate, block, (attention).

    Args:
        in_channels: channels of the coarser decoder feature.
        skip_channels: channels of the encoder skip at the finer resolution; 0 for no skip.
        out_channels: output channels (also the upsampled channels).
        block: conv block class, ``block(in, out, batch_norm=...)``.
        up_mode: see ``UpSample``.
        gate: skip gate class ``gate(gating_channels, skip_channels)`` or None.
        attention: decoder attention class ``attention(channels)`` applied after the block, or None.
        batch_norm: passed to the block.

    Shapes: ``x (N, in_channels, H, W)``, ``skip (N, skip_channels, 2H, 2W) -> (N, out_channels, 2H, 2W)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, *,
                 block: type[nn.Module] = DoubleConv, up_mode: UpMode = "transpose",
                 gate: type[nn.Module] | None = None, attention: type[nn.Module] | None = None,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.up = UpSample(in_channels, out_channels, up_mode)
        self.gate = gate(out_channels, skip_channels) if gate is not None and skip_channels else None
        self.block = block(out_channels + skip_channels, out_channels, batch_norm=batch_norm)
        self.attention = attention(out_channels) if attention is not None else None

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = self.up(x)
        if skip is not None:
            if self.gate is not None:
                skip = self.gate(x, skip)
            x = torch.cat([skip, x], dim=1)
        x = self.block(x)
        return self.attention(x) if self.attention is not None else x


class UNet(nn.Module):
    """A configurable U-Net (Ronneberger et al., 2015): encoder, decoder stages with skips, 1x1 head.

    Args:
        in_channels: image channels (>= 1).
        num_classes: output channels (>= 1); logits, no activation.
        widths: encoder channels per level (depth = ``len(widths)`` >= 2).
        block: conv block: ``"double-conv"``, ``"residual"`` or a class ``block(in, out, batch_norm=)``.
        up_mode: ``"transpose"``, ``"bilinear"``, ``"nearest"`` or ``"pixelshuffle"`` (see ``UpSample``).
        gate: skip gate: None, ``"attention"`` or a class ``gate(gating_channels, skip_channels)``.
        decoder_attention: None, ``"scse"`` or a class ``attention(channels)``, after each decoder block.
        batch_norm: BN after every conv (bias-free convs); False gives the paper's layout (biased convs).
        pad_mode: ``"reflect"`` or ``"zeros"``: how inputs are padded to a multiple of ``2**(depth-1)``.
        encoder: replaces the built-in encoder (``widths``, ``block`` and ``batch_norm`` then apply to the
            decoder only). It must have ``channels`` (one entry per stride 1, 2, 4, ...; 0 where it gives no
            feature) and return one tensor (or None) per entry.
        decoder_widths: output channels of the decoder stages, deepest first; default ``widths[-2::-1]``.

    Shapes: ``(N, in_channels, H, W) -> (N, num_classes, H, W)`` for any ``H, W``.
    """

    def __init__(self, *, in_channels: int, num_classes: int, widths: Sequence[int] = (64, 128, 256, 512, 1024),
                 block: BlockArg = "double-conv", up_mode: UpMode = "transpose", gate: OptionalLayerArg = None,
                 decoder_attention: OptionalLayerArg = None, batch_norm: bool = True,
                 pad_mode: PadMode = "reflect", encoder: nn.Module | None = None,
                 decoder_widths: Sequence[int] | None = None) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("num_classes", num_classes)
        widths = tuple(positive_int("widths[]", w) for w in widths)
        block_cls = _resolve("block", block, BLOCKS, optional=False)
        gate_cls = _resolve("gate", gate, GATES, optional=True)
        attention_cls = _resolve("decoder_attention", decoder_attention, DECODER_ATTENTIONS, optional=True)
        self.pad_mode = choose("pad_mode", pad_mode, PAD_MODES)
        if encoder is None:
            if len(widths) < 2:
                raise UNetOptionError(f"widths={widths!r} needs at least 2 levels")
            encoder = Encoder(in_channels, widths, block=block_cls, batch_norm=batch_norm)
        channels = tuple(encoder.channels)
        if decoder_widths is None:
            decoder_widths = channels[-2::-1]
        decoder_widths = tuple(positive_int("decoder_widths[]", w) for w in decoder_widths)
        if len(decoder_widths) != len(channels) - 1:
            raise UNetOptionError(f"decoder_widths={decoder_widths!r} needs {len(channels) - 1} entries, one per "
                                  f"decoder stage of an encoder with {len(channels)} levels")
        self.size_multiple = 2 ** (len(channels) - 1)
        self.encoder = encoder
        ins = (channels[-1], *decoder_widths[:-1])
        skips = channels[-2::-1]
        self.ups = nn.ModuleList(
            DecoderStage(c_in, c_skip, c_out, block=block_cls, up_mode=up_mode, gate=gate_cls,
                         attention=attention_cls, batch_norm=batch_norm)
            for c_in, c_skip, c_out in zip(ins, skips, decoder_widths)
        )
        self.head = nn.Conv2d(decoder_widths[-1], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Raw logits ``(N, num_classes, H, W)`` for images ``(N, in_channels, H, W)`` of any size."""
        h, w = x.shape[-2:]
        features = self.encoder(pad_to_multiple(x, self.size_multiple, self.pad_mode))
        y = features.pop()
        for stage in self.ups:
            y = stage(y, features.pop())
        return self.head(y)[..., :h, :w]


class UNetPlusPlus(nn.Module):
    """UNet++ (Zhou et al., 2018, "UNet++: A Nested U-Net Architecture for Medical Image Segmentation").

    Node ``X[i][j]`` (level ``i``, column ``j >= 1``) is ``block(cat(X[i][0], ..., X[i][j-1], up(X[i+1][j-1])))``
    with ``widths[i]`` channels; ``X[i][0]`` is the U-Net encoder. ``self.nodes`` holds the nodes in the order
    they are computed (column by column, top level first), ``self.heads`` the 1x1 heads.

    Deep supervision: with ``deep_supervision=True`` there is a head on each of ``X[0][1] ... X[0][depth-1]``
    and ``forward`` returns the mean of their logits (in training and in eval), so every head is trained through
    the one output; ``forward_heads`` returns each head's logits for a loss summed over heads (the paper's
    form). Without it, the single head sits on ``X[0][depth-1]``.

    Args:
        in_channels: image channels.
        num_classes: output channels (logits).
        widths: channels per level (depth = ``len(widths)``).
        block: conv block name or class (as in ``UNet``).
        up_mode: see ``UpSample``.
        decoder_attention: None, ``"scse"`` or a class, after each nested node.
        batch_norm: BN after every conv.
        pad_mode: ``"reflect"`` or ``"zeros"``.
        deep_supervision: one head per top-level node, outputs averaged.

    Shapes: ``(N, in_channels, H, W) -> (N, num_classes, H, W)`` for any ``H, W``.
    """

    def __init__(self, *, in_channels: int, num_classes: int, widths: Sequence[int] = (32, 64, 128, 256, 512),
                 block: BlockArg = "double-conv", up_mode: UpMode = "transpose",
                 decoder_attention: OptionalLayerArg = None, batch_norm: bool = True,
                 pad_mode: PadMode = "reflect", deep_supervision: bool = False) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("num_classes", num_classes)
        widths = tuple(positive_int("widths[]", w) for w in widths)
        if len(widths) < 2:
            raise UNetOptionError(f"widths={widths!r} needs at least 2 levels")
        block_cls = _resolve("block", block, BLOCKS, optional=False)
        attention_cls = _resolve("decoder_attention", decoder_attention, DECODER_ATTENTIONS, optional=True)
        self.pad_mode = choose("pad_mode", pad_mode, PAD_MODES)
        self.depth = len(widths)
        self.size_multiple = 2 ** (self.depth - 1)
        self.encoder = Encoder(in_channels, widths, block=block_cls, batch_norm=batch_norm)
        self.nodes = nn.ModuleList()
        for j in range(1, self.depth):
            for i in range(self.depth - j):
                # up() maps X[i+1][j-1] to widths[i] channels, so the block sees (j + 1) * widths[i] channels.
                self.nodes.append(DecoderStage(widths[i + 1], j * widths[i], widths[i], block=block_cls,
                                               up_mode=up_mode, attention=attention_cls, batch_norm=batch_norm))
        n_heads = self.depth - 1 if deep_supervision else 1
        self.heads = nn.ModuleList(nn.Conv2d(widths[0], num_classes, 1) for _ in range(n_heads))

    def forward_heads(self, x: Tensor) -> list[Tensor]:
        """Each head's logits ``(N, num_classes, H, W)``: one per top-level node with deep supervision."""
        h, w = x.shape[-2:]
        grid = [[f] for f in self.encoder(pad_to_multiple(x, self.size_multiple, self.pad_mode))]
        nodes = iter(self.nodes)
        for j in range(1, self.depth):
            for i in range(self.depth - j):
                grid[i].append(next(nodes)(grid[i + 1][j - 1], torch.cat(grid[i][:j], dim=1)))
        top = grid[0][1:][-len(self.heads):]
        return [head(feature)[..., :h, :w] for head, feature in zip(self.heads, top)]

    def forward(self, x: Tensor) -> Tensor:
        """Raw logits ``(N, num_classes, H, W)``: the mean over heads with deep supervision."""
        outputs = self.forward_heads(x)
        return outputs[0] if len(outputs) == 1 else torch.stack(outputs).mean(dim=0)


# --- builders -------------------------------------------------------------------------------------------
# Every U-Net builder takes the same options; a variant differs only in its defaults, which are
# dict(UNET_DEFAULTS, **PRESETS[name]) (tests/plugins/zoo_unet checks that the signatures match).

UNET_DEFAULTS: dict[str, Any] = dict(width=64, depth=5, block="double-conv", up_mode="transpose", gate=None,
                                     decoder_attention=None, batch_norm=True, pad_mode="reflect")
PRESETS: dict[str, dict[str, Any]] = {
    "unet": {},
    "unet-attn": {"gate": "attention"},
    "unet-res": {"block": "residual"},
    "unet-bilinear": {"up_mode": "bilinear"},
    "unet-nearest": {"up_mode": "nearest"},
    "unet-pixelshuffle": {"up_mode": "pixelshuffle"},
    "unet-scse": {"decoder_attention": "scse"},
}


def level_widths(width: int, depth: int) -> tuple[int, ...]:
    """``(width, 2*width, ..., 2**(depth-1) * width)``: channels per level, doubling with depth."""
    positive_int("width", width)
    positive_int("depth", depth, minimum=2)
    return tuple(width * 2**i for i in range(depth))


def _create_unet(options: Mapping[str, Any]) -> UNet:
    """Build a ``UNet`` from a builder's options (``width``/``depth`` become ``widths``)."""
    options = dict(options)
    widths = level_widths(options.pop("width"), options.pop("depth"))
    return UNet(widths=widths, **options)


def unet(*, in_channels: int, num_classes: int, width: int = 64, depth: int = 5, block: str = "double-conv",
         up_mode: str = "transpose", gate: str | None = None, decoder_attention: str | None = None,
         batch_norm: bool = True, pad_mode: str = "reflect") -> UNet:
    """U-Net (Ronneberger et al. 2015): double 3x3 conv + BN per level, transposed-conv upsampling.

    Args:
        in_channels: image channels.
        num_classes: output channels (logits).
        width: channels of the first level; they double per level (64 -> 64..1024).
        depth: number of levels (5 in the paper); inputs are padded to a multiple of ``2**(depth-1)``.
        block: ``"double-conv"`` or ``"residual"``.
        up_mode: ``"transpose"``, ``"bilinear"``, ``"nearest"`` or ``"pixelshuffle"``.
        gate: None or ``"attention"`` (attention gates on the skips).
        decoder_attention: None or ``"scse"``.
        batch_norm: BN after each conv; ``False`` is the paper's layout (convs with bias, no BN).
        pad_mode: ``"reflect"`` or ``"zeros"``.
    """
    return _create_unet(locals())


def unet_attn(*, in_channels: int, num_classes: int, width: int = 64, depth: int = 5, block: str = "double-conv",
              up_mode: str = "transpose", gate: str | None = "attention", decoder_attention: str | None = None,
              batch_norm: bool = True, pad_mode: str = "reflect") -> UNet:
    """Attention U-Net (Oktay et al. 2018): additive attention gates on the skip connections.

    Options as for ``unet``.
    """
    return _create_unet(locals())


def unet_res(*, in_channels: int, num_classes: int, width: int = 64, depth: int = 5, block: str = "residual",
             up_mode: str = "transpose", gate: str | None = None, decoder_attention: str | None = None,
             batch_norm: bool = True, pad_mode: str = "reflect") -> UNet:
    """Residual U-Net (Zhang et al. 2018, ResUNet): residual blocks (He et al. 2016) in encoder and decoder.

    Options as for ``unet``.
    """
    return _create_unet(locals())


def unet_bilinear(*, in_channels: int, num_classes: int, width: int = 64, depth: int = 5,
                  block: str = "double-conv", up_mode: str = "bilinear", gate: str | None = None,
                  decoder_attention: str | None = None, batch_norm: bool = True, pad_mode: str = "reflect") -> UNet:
    """U-Net with bilinear upsampling + 1x1 conv instead of transposed convs (Ronneberger et al. 2015).

    Options as for ``unet``.
    """
    return _create_unet(locals())


def unet_nearest(*, in_channels: int, num_classes: int, width: int = 64, depth: int = 5,
                 block: str = "double-conv", up_mode: str = "nearest", gate: str | None = None,
                 decoder_attention: str | None = None, batch_norm: bool = True, pad_mode: str = "reflect") -> UNet:
    """U-Net with nearest-neighbour upsampling + 1x1 conv (Ronneberger et al. 2015; Odena et al. 2016).

    Options as for ``unet``.
    """
    return _create_unet(locals())


def unet_pixelshuffle(*, in_channels: int, num_classes: int, width: int = 64, depth: int = 5,
                      block: str = "double-conv", up_mode: str = "pixelshuffle", gate: str | None = None,
                      decoder_attention: str | None = None, batch_norm: bool = True,
                      pad_mode: str = "reflect") -> UNet:
    """U-Net with sub-pixel conv upsampling (Shi et al. 2016), ICNR-initialised (Aitken et al. 2017).

    Options as for ``unet``.
    """
    return _create_unet(locals())


def unet_scse(*, in_channels: int, num_classes: int, width: int = 64, depth: int = 5, block: str = "double-conv",
              up_mode: str = "transpose", gate: str | None = None, decoder_attention: str | None = "scse",
              batch_norm: bool = True, pad_mode: str = "reflect") -> UNet:
    """U-Net with concurrent spatial and channel squeeze & excitation in the decoder (Roy et al. 2018).

    Options as for ``unet``.
    """
    return _create_unet(locals())


def unetpp(*, in_channels: int, num_classes: int, width: int = 32, depth: int = 5, block: str = "double-conv",
           up_mode: str = "transpose", decoder_attention: str | None = None, batch_norm: bool = True,
           pad_mode: str = "reflect", deep_supervision: bool = False) -> UNetPlusPlus:
    """UNet++ (Zhou et al. 2018): nested dense skip pathways, optional deep supervision.

    Args:
        in_channels: image channels.
        num_classes: output channels (logits).
        width: channels of the first level, doubling per level (32 as in the paper: 32..512).
        depth: number of levels.
        block: ``"double-conv"`` or ``"residual"``.
        up_mode: ``"transpose"``, ``"bilinear"``, ``"nearest"`` or ``"pixelshuffle"``.
        decoder_attention: None or ``"scse"``.
        batch_norm: BN after each conv.
        pad_mode: ``"reflect"`` or ``"zeros"``.
        deep_supervision: a head on every top-level node; the output is their mean (see ``UNetPlusPlus``).
    """
    return UNetPlusPlus(in_channels=in_channels, num_classes=num_classes, widths=level_widths(width, depth),
                        block=block, up_mode=up_mode, decoder_attention=decoder_attention,  # type: ignore[arg-type]
                        batch_norm=batch_norm, pad_mode=pad_mode, deep_supervision=deep_supervision)  # type: ignore[arg-type]


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("unet", unet, tags=("reference",)),
    ModelSpec("unet-attn", unet_attn, tags=("attention",)),
    ModelSpec("unet-res", unet_res, tags=("residual",)),
    ModelSpec("unet-bilinear", unet_bilinear, tags=("upsampling",)),
    ModelSpec("unet-nearest", unet_nearest, tags=("upsampling",)),
    ModelSpec("unet-pixelshuffle", unet_pixelshuffle, tags=("upsampling",)),
    ModelSpec("unet-scse", unet_scse, tags=("attention",)),
    ModelSpec("unetpp", unetpp, tags=("nested",)),
)
