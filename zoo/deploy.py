"""Deployed models: the files ``zoo export`` writes, what their metadata says, and running them as zoo models.

An exported file holds the network only: float32 ``(N, C, H, W)`` normalised images in, raw logits
``(N, K, H, W)`` out, with H and W multiples of the file's ``stride``. Everything around the network that the
leaderboard scored is described in the file's metadata (:func:`pipeline_spec`), so a consumer in another language
reproduces the benchmark's masks:

1. ``input``: uint8 pixels / 255, channels adapted (gray repeated to RGB, RGBA's alpha dropped).
2. ``resize``: to the recipe's square size (scored there, or the logits upsampled back to the original size),
   by the recipe's ``input_scale`` factor, or ``null`` (native size).
3. ``normalize``: per image and channel, ``(x - mean) / (std + 1e-6)`` over H and W (population std). There is
   no dataset mean/std: the statistics are the image's own, so ``mean`` and ``std`` are ``null``.
4. ``pad``: bottom and right up to a multiple of ``stride``, reflecting (replicating where a pad is not smaller
   than the side); the logits are cropped back.
5. ``inference``: the whole image, or sliding windows with the recipe's window, overlap and blending.
6. ``postprocess``: argmax over classes, or logit > 0 for a one-channel (binary) model.

Where the metadata lives: ONNX ``metadata_props`` (``custom_metadata_map`` in every ONNX Runtime binding) holds
the whole document as JSON under ``zoo`` and, for convenience, each of ``class_names``, ``in_channels``,
``out_channels``, ``normalization``, ``stride``, ``pipeline``, ``zoo_version``, ``model``, ``model_version`` and
``recipe`` as its own JSON value. A ``.pt2`` carries the document as the extra file ``zoo.json``.

:func:`load_deployed` turns either file into a :class:`DeployedModel` plus the checkpoint-style metadata, so
``zoo predict`` and ``zoo eval`` run it through the same pre- and post-processing code as a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.errors import ExportError

__all__ = ["DEPLOYED_SUFFIXES", "ONNX_INSTALL", "PIPELINE_VERSION", "DeployedModel", "is_deployed",
           "scoring_settings", "pipeline_spec", "normalization_spec", "flat_onnx_metadata", "onnx_available",
           "require_onnx", "onnx_session", "load_deployed"]

DEPLOYED_SUFFIXES = (".onnx", ".pt2")
ONNX_INSTALL = "pip install 'segzoo[onnx]'"
PIPELINE_VERSION = 1
PT2_METADATA = "zoo.json"
_FLAT_KEYS = ("class_names", "in_channels", "out_channels", "normalization", "stride", "pipeline", "zoo_version",
              "model", "model_version", "recipe")


def is_deployed(path: str | Path) -> bool:
    """Whether ``path`` names an exported file (``.onnx`` or ``.pt2``) rather than a checkpoint."""
    return Path(path).suffix.lower() in DEPLOYED_SUFFIXES


def _missing_onnx(exporter: bool) -> list[str]:
    import importlib.util

    needed = ("onnx", "onnxscript", "onnxruntime") if exporter else ("onnxruntime",)
    return [name for name in needed if importlib.util.find_spec(name) is None]


def onnx_available(*, exporter: bool = True) -> bool:
    """Whether the ``onnx`` extra is installed (``exporter=False``: only ONNX Runtime, enough to run a file)."""
    return not _missing_onnx(exporter)


def require_onnx(*, exporter: bool) -> None:
    """Raise a one-line ``ExportError`` naming the install command when the ``onnx`` extra is missing.

    Args:
        exporter: also need ``onnx`` and ``onnxscript`` (exporting), not only ``onnxruntime`` (running).
    """
    missing = _missing_onnx(exporter)
    if missing:
        raise ExportError(f"ONNX {'export' if exporter else 'inference'} needs {', '.join(missing)}, which is not "
                          f"installed; install the onnx extra: {ONNX_INSTALL}")


def scoring_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """How the run scored its test split: ``zoo.training.parts.predict_settings`` with the recipe's tiling.

    The run tiles only at native size (``zoo.training.loop``). The file's pipeline is described from the same
    ``predict_settings`` that ``zoo eval`` and ``zoo predict`` run with, so the description follows the code.
    """
    from zoo.training.parts import predict_settings

    config = meta.get("config") or {}
    return predict_settings(meta, tiled=bool(config.get("tiled")) and meta.get("eval_image_size") == "native")


_BLEND_WEIGHTS = {
    "tent": "product of linear ramps falling to the tile edges, clamped at 1e-3; sides below the tile are "
            "replicate-padded at the end",
    "gaussian": "MONAI's: a gaussian of sigma 0.125 x tile side, clamped at its minimum (>= 1e-3); an image that "
                "fits one window runs whole, sides below the tile are zero-padded on both sides",
    "constant": "all ones (a plain average); an image that fits one window runs whole, sides below the tile are "
                "zero-padded on both sides",
}


def _resize_spec(meta: Mapping[str, Any], input_scale: float | tuple[int, int]) -> dict[str, Any] | None:
    """The ``resize`` step: to the recipe's square (scored there or upsampled back), by a factor, or none."""
    size, eval_size = int(meta["image_size"]), meta.get("eval_image_size")
    if eval_size == "upsampled":
        return {"size": [size, size], "image": "bilinear (antialias when shrinking)",
                "logits_back": "bilinear to the original size", "scored_at": "original size"}
    if eval_size == "native":
        if input_scale == 1.0:
            return None
        return {"factor": input_scale, "image": "bilinear (antialias when shrinking)",
                "logits_back": "bilinear to the original size", "scored_at": "original size"}
    side = size if eval_size is None else int(eval_size)
    return {"size": [side, side], "image": "bilinear, antialias", "mask": "nearest", "scored_at": "this size",
            "logits_back": "bilinear to the original size (zoo predict)"}


def pipeline_spec(meta: Mapping[str, Any], *, stride: int) -> dict[str, Any]:
    """The pre-processing, inference and post-processing the checkpoint was scored with, as plain JSON.

    Args:
        meta: the checkpoint's metadata (``zoo.training.parts.model_meta``).
        stride: the multiple that H and W are padded to before the network.
    """
    settings = scoring_settings(meta)
    out_channels = int(meta["out_channels"])
    inference: dict[str, Any] = {"mode": "whole_image"}
    if settings["tile"] is not None:
        tile = settings["tile"]
        inference = {"mode": "sliding_window", "tile": list(tile) if isinstance(tile, tuple) else [tile, tile],
                     "overlap": settings["overlap"], "blend": settings["blend"],
                     "blend_weight": _BLEND_WEIGHTS[settings["blend"]], "window_pad_multiple": stride,
                     "implementation": "zoo.inference.sliding_window_logits"}
    return {
        "version": PIPELINE_VERSION,
        "input": {"layout": "NCHW", "dtype": "float32", "channels": int(meta["in_channels"]),
                  "scale": "uint8 pixel / 255", "channel_adapt": "gray repeated to RGB; RGBA drops alpha"},
        "resize": _resize_spec(meta, settings["input_scale"]),
        "normalize": normalization_spec(),
        "pad": {"multiple": stride, "where": "bottom and right",
                "mode": "reflect; replicate where a pad is not smaller than the side", "crop_logits": True},
        "inference": inference,
        "postprocess": ({"kind": "threshold", "logit_threshold": 0.0, "classes": [0, 1]} if out_channels == 1
                        else {"kind": "argmax", "axis": 1}),
        "output": {"kind": "logits", "layout": "NCHW", "channels": out_channels},
    }


def normalization_spec() -> dict[str, Any]:
    """How images are normalised (``zoo.data.normalize_image``): per image, no dataset statistics."""
    from zoo.data.transforms import NORMALIZE_EPS

    return {"kind": "per_image_standardize", "mean": None, "std": None, "eps": NORMALIZE_EPS,
            "over": "H and W, per image and channel", "std_correction": 0,
            "formula": "(x - mean(x)) / (std(x) + eps), x in [0, 1]"}


def flat_onnx_metadata(doc: Mapping[str, Any]) -> dict[str, str]:
    """ONNX ``metadata_props``: the whole document under ``zoo`` plus the keys a consumer reads most."""
    flat = {"zoo": json.dumps(doc)}
    flat.update({key: json.dumps(doc.get(key)) for key in _FLAT_KEYS})
    return flat


def onnx_session(path: str | Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime session on the CPU execution provider, with ``threads`` (default torch's) intra-op threads."""
    require_onnx(exporter=False)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3  # errors only: ORT's graph-optimisation warnings are not the user's business
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class DeployedModel(nn.Module):
    """An exported network run as a zoo model: any H and W in, logits of that size out.

    Pads to the file's stride as the pipeline does, checks a static file's size, runs the file and crops.
    It holds no parameters; ``run`` is a plain callable (an ONNX Runtime session or a ``.pt2``'s module, which
    refuses ``.eval()``), so ``.to()``, ``.eval()`` and autocast leave it alone.

    Args:
        run: maps a float32 ``(N, C, H, W)`` tensor to logits.
        stride: H and W the file takes are multiples of this.
        input_size: ``(H, W)`` of a file exported without dynamic sizes, else ``None``.
        min_size: the smallest ``(H, W)`` the file takes.
        path: the file (for messages).
        runtime: ``onnxruntime`` or ``torch.export``.
    """

    def __init__(self, run: Callable[[Tensor], Tensor], *, stride: int, input_size: tuple[int, int] | None,
                 min_size: tuple[int, int], path: Path, runtime: str) -> None:
        super().__init__()
        self._run = run
        self.stride, self.input_size, self.min_size = stride, input_size, min_size
        self.path, self.runtime = path, runtime

    def forward(self, x: Tensor) -> Tensor:
        from zoo.inference import predict_logits

        return predict_logits(self._checked_run, x, pad_multiple=self.stride)  # type: ignore[arg-type]

    def _checked_run(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if self.input_size is not None and (h, w) != self.input_size:
            raise ExportError(f"{self.path.name} takes {self.input_size[0]}x{self.input_size[1]} inputs (exported "
                              f"without --dynamic-size) but got {h}x{w}; export with --dynamic-size for other sizes")
        if h < self.min_size[0] or w < self.min_size[1]:
            raise ExportError(f"{self.path.name} takes inputs of at least {self.min_size[0]}x{self.min_size[1]} (a "
                              f"bound of the exported graph) but got {h}x{w}")
        return self._run(x)


def _onnx_runner(session: Any) -> Callable[[Tensor], Tensor]:
    name = session.get_inputs()[0].name

    def run(x: Tensor) -> Tensor:
        out = session.run(None, {name: x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out).to(x.device)

    return run


def _read_pt2(path: Path) -> tuple[Callable[[Tensor], Tensor], dict[str, Any]]:
    files = {PT2_METADATA: ""}
    try:
        program = torch.export.load(str(path), extra_files=files)
    except Exception as exc:  # a corrupt or foreign file: torch raises many kinds
        raise ExportError(f"cannot read {str(path)!r} as a torch.export program: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not files[PT2_METADATA]:
        raise ExportError(f"{str(path)!r} has no {PT2_METADATA}; it was not written by zoo export")
    module = program.module()
    return (lambda x: module(x)), json.loads(files[PT2_METADATA])


def load_deployed(path: str | Path, *, threads: int | None = None) -> tuple[DeployedModel, dict[str, Any]]:
    """Load an exported file as a model plus its metadata (the checkpoint's, with ``path`` and ``deployment``).

    Args:
        path: a ``.onnx`` (run by ONNX Runtime, CPU) or ``.pt2`` (run by torch) file written by ``zoo export``.
        threads: ONNX Runtime intra-op threads (default torch's).

    Raises:
        ExportError: missing file, not written by zoo, or ONNX Runtime not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"exported model {str(path)!r} does not exist")
    if path.suffix.lower() == ".onnx":
        session = onnx_session(path, threads=threads)
        props = session.get_modelmeta().custom_metadata_map
        if "zoo" not in props:
            raise ExportError(f"{str(path)!r} has no zoo metadata; it was not written by zoo export")
        run, doc, runtime = _onnx_runner(session), json.loads(props["zoo"]), "onnxruntime"
    else:
        (run, doc), runtime = _read_pt2(path), "torch.export"
    export, stride = doc["export"], int(doc["stride"])
    size = export.get("input_size")
    model = DeployedModel(run, stride=stride, input_size=tuple(size) if size else None,
                          min_size=tuple(export.get("min_size") or (stride, stride)), path=path, runtime=runtime)
    return model, {**doc, "path": str(path)}
