"""Exporting a checkpoint for deployment (``zoo export``): ONNX or a torch.export ``.pt2``, checked for parity.

Which exporter each model takes, and why (torch 2.14.1, onnxscript 0.7.2, onnxruntime 1.32):

- ONNX: every built-in model (``unet`` and its variants, ``unetpp``, ``unet-resnet34``, the smp and MONAI
  adapters, the example plugin's ``segnet``) goes through the dynamo-based exporter,
  ``torch.onnx.export(dynamo=True)``: ``torch.export`` captures the graph with symbolic batch, H and W, and
  onnxscript translates it. No model needs another path, so there is no fallback. The TorchScript exporter
  (``dynamo=False``) is deliberately not used: ``torch.jit.trace`` freezes Python control flow on traced
  values, including the models' own pad-to-multiple branch (``if ph or pw``, a ``TracerWarning`` for every
  model here), so a traced file can be silently wrong at sizes other than the example's; it is also
  deprecated since torch 2.9.
- ``.pt2``: ``torch.export.export`` (non-strict) and ``torch.export.save``; the loaded ``ExportedProgram``
  runs in any torch >= the exporting one.

H and W are exported as ``stride x Dim``, so the models' padding branches resolve statically and the padding
the benchmark does (``zoo.inference.predict_logits``: to a multiple of 32) stays outside the file, in the
pipeline its metadata describes (``zoo.deploy``). Without ``dynamic_size`` H and W are fixed at the size the
recipe scores at; the batch is always dynamic. A model that cannot be captured or translated raises an
``ExportError`` of one line naming the operator (``aten.linalg_eig``) or construct (a data-dependent branch,
with the file and line of the model's code). The parity check runs the written file (ONNX Runtime CPU or the
loaded program) against the checkpoint's eager fp32 model on inputs of several sizes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import re
import sysconfig
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import zoo
from zoo import registry
from zoo.deploy import (PT2_METADATA, flat_onnx_metadata, is_deployed, load_deployed, normalization_spec,
                         pipeline_spec, require_onnx)
from zoo.errors import ExportError, check_choice
from zoo.fileio import atomic_write, atomic_write_bytes
from zoo.inference import logits_to_classes

if TYPE_CHECKING:
    from zoo.registry import Registries

__all__ = ["FORMATS", "PARITY_ATOL", "PIPELINE_MULTIPLE", "ParityCase", "ExportResult", "export_checkpoint",
           "export_stride", "check_parity", "describe_failure", "deployed_speed"]

log = logging.getLogger(__name__)

FORMATS = ("onnx", "pt2")
PARITY_ATOL = 1e-4
PIPELINE_MULTIPLE = 32  # zoo.inference.predict_logits pads every input to this before a model sees it
EXPORTERS = {"onnx": "torch.onnx (dynamo)", "pt2": "torch.export"}


@dataclass(frozen=True)
class ParityCase:
    """One input of the parity check: its shape, the largest absolute logit difference, equal masks or not."""

    shape: tuple[int, ...]
    max_abs_diff: float
    masks_equal: bool

    @property
    def passed(self) -> bool:
        return self.masks_equal and self.max_abs_diff <= PARITY_ATOL


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_checkpoint` wrote and how the file compared with the checkpoint.

    Attributes:
        path: the written file.
        format: ``onnx`` or ``pt2``.
        exporter: ``torch.onnx (dynamo)`` or ``torch.export``.
        model: the registered model name.
        stride: H and W the file takes are multiples of this.
        input_size: ``(H, W)`` of a static-size file, ``None`` when H and W are dynamic.
        opset: the ONNX opset (``None`` for ``pt2``).
        cases: the parity check's inputs (empty without the check).
        seconds: export time (without the check).
        tolerance: the largest logit difference the check accepts.
    """

    path: Path
    format: str
    exporter: str
    model: str
    stride: int
    input_size: tuple[int, int] | None
    opset: int | None
    cases: tuple[ParityCase, ...]
    seconds: float
    tolerance: float = PARITY_ATOL

    @property
    def max_abs_diff(self) -> float | None:
        """The largest logit difference over the checked inputs (``None`` when unchecked)."""
        return max((c.max_abs_diff for c in self.cases), default=None)

    @property
    def passed(self) -> bool | None:
        """Every checked input within :data:`PARITY_ATOL` with identical masks (``None`` when unchecked)."""
        return all(c.passed for c in self.cases) if self.cases else None


def export_stride(model: nn.Module) -> int:
    """The multiple H and W of the file are: the pipeline's 32, or a larger one the model needs.

    The model's own is ``zoo.costs.model_stride`` (its ``size_multiple`` or ``PadToMultiple.multiple``).
    """
    from zoo.costs import model_stride

    return math.lcm(PIPELINE_MULTIPLE, model_stride(model))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _static_size(meta: Mapping[str, Any], stride: int) -> tuple[int, int] | None:
    """``(H, W)`` of a fixed-size file, or ``None`` when the recipe's pipeline feeds the network other sizes."""
    from zoo.deploy import scoring_settings

    size, eval_size = int(meta["image_size"]), meta.get("eval_image_size")
    if (meta.get("config") or {}).get("patch_size"):  # zoo predict then scores at native size, as the run does
        eval_size = "native" if eval_size in (None, "upsampled") else eval_size
    if eval_size in (None, "upsampled", size):  # every image resized to the training square
        return _round_up(size, stride), _round_up(size, stride)
    settings = scoring_settings(meta)
    if eval_size == "native" and settings["tile"] is not None and settings["blend"] == "tent":
        # tent windows are always the tile (a small image is padded to it); the other blends run a small one whole
        tile = settings["tile"]
        th, tw = tile if isinstance(tile, tuple) else (tile, tile)
        return _round_up(th, stride), _round_up(tw, stride)
    return None


def _document(meta: Mapping[str, Any], *, fmt: str, exporter: str, opset: int | None, stride: int,
              input_size: tuple[int, int] | None, min_size: tuple[int, int]) -> dict[str, Any]:
    """The metadata written into the file: the checkpoint's, the pipeline, and how it was exported."""
    checkpoint = {k: v for k, v in meta.items() if k != "path"}
    plugin = meta.get("plugin") or {}
    return {
        **checkpoint, "zoo_version": zoo.__version__, "model_version": plugin.get("version"),
        "model_distribution": plugin.get("distribution"), "normalization": normalization_spec(), "stride": stride,
        "recipe": meta.get("config"), "pipeline": pipeline_spec(meta, stride=stride),
        "export": {"format": fmt, "exporter": exporter, "opset": opset, "input_size": input_size, "min_size": min_size,
                   "dynamic_batch": True, "dynamic_size": input_size is None, "torch": str(torch.__version__),
                   "checkpoint": Path(meta["path"]).name, "step": meta.get("step")},
    }


def _example(in_channels: int, stride: int,
             size: tuple[int, int] | None) -> tuple[torch.Tensor, tuple[dict[int, Any]]]:
    """The example input (batch 2: torch.export specialises 0 and 1) and its dynamic shapes."""
    from torch.export import Dim

    batch = Dim("batch", min=1)
    if size is None:
        x = torch.randn(2, in_channels, 2 * stride, 3 * stride)
        return x, ({0: batch, 2: stride * Dim("height_blocks", min=1), 3: stride * Dim("width_blocks", min=1)},)
    return torch.randn(2, in_channels, *size), ({0: batch},)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints, warnings and debug logging; errors still raise."""
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_log.setLevel(level)


def export_checkpoint(checkpoint: str | Path, *, format: str = "onnx", out: str | Path | None = None,
                      opset: int | None = None, dynamic_size: bool = False, check: bool = True,
                      registries: Registries | None = None) -> ExportResult:
    """Export a checkpoint's model to ONNX or a ``.pt2`` with its pipeline in the metadata, and check parity.

    Args:
        checkpoint: a ``.safetensors`` file, its stem, or a run folder (its ``best``).
        format: ``onnx`` (needs the ``onnx`` extra) or ``pt2``.
        out: the file to write (default: next to the checkpoint, ``STEM.onnx`` / ``STEM.pt2``).
        opset: ONNX opset (default: the exporter's, 20 in torch 2.14; the dynamo exporter needs >= 18).
        dynamic_size: H and W dynamic (any multiple of the stride); otherwise fixed at the size the recipe
            scores at, unless that pipeline needs other sizes (native-size scoring), which turns it on.
        check: run the parity check on the written file (:func:`check_parity`).
        registries: the plugins that provide the model (default: the installed ones).

    Returns:
        What was written, and the parity check's cases.

    Raises:
        ExportError: the model cannot be exported (one line naming the operator or construct), or the
            ``onnx`` extra is missing.
    """
    from zoo.training.parts import model_from_checkpoint

    check_choice("export format", format, FORMATS)
    if is_deployed(checkpoint):
        raise ExportError(f"{str(checkpoint)!r} is an exported file already; export from its checkpoint")
    if format == "onnx":
        require_onnx(exporter=True)
    reg = registries if registries is not None else registry.default_registry()
    model, meta = model_from_checkpoint(checkpoint, reg)
    model = model.float().eval()
    stride = export_stride(model)
    input_size = None if dynamic_size else _static_size(meta, stride)
    if input_size is None and not dynamic_size:
        log.info("H and W are dynamic: the recipe's pipeline feeds the network images of other sizes")
    path = Path(out) if out else Path(meta["path"]).with_suffix(f".{format}")
    x, shapes = _example(int(meta["in_channels"]), stride, input_size)
    started = time.perf_counter()
    try:
        with _quiet(), torch.no_grad():
            artifact, program = _capture(model, x, shapes, format, opset)
    except Exception as exc:  # the exporters raise many kinds; the user needs the construct, not the stack
        raise ExportError(f"model {meta['model']!r} cannot be exported to {format}: {describe_failure(exc)}") from None
    used = _opset_of(artifact) if format == "onnx" else None
    if opset is not None and used is not None and used != opset:  # the exporter cannot go below 17-18 everywhere
        raise ExportError(f"the ONNX exporter could not write opset {opset} for model {meta['model']!r} (it wrote "
                          f"{used}); ask for --opset {used} or later")
    min_size = input_size or _min_size(program, stride)
    doc = _document(meta, fmt=format, exporter=EXPORTERS[format], opset=used, stride=stride, input_size=input_size,
                    min_size=min_size)
    _write(artifact, format, path, doc)
    seconds = time.perf_counter() - started
    cases = check_parity(model, path, in_channels=int(meta["in_channels"]), stride=stride, input_size=input_size,
                         min_size=min_size, image_size=int(meta["image_size"])) if check else ()
    return ExportResult(path=path, format=format, exporter=EXPORTERS[format], model=meta["model"], stride=stride,
                        input_size=input_size, opset=used, cases=tuple(cases), seconds=seconds)


def _capture(model: nn.Module, x: torch.Tensor, shapes: tuple[dict[int, Any]], fmt: str,
             opset: int | None) -> tuple[Any, Any]:
    """The file's content (an ``onnx.ModelProto`` or the program) and the ``ExportedProgram`` behind it."""
    if fmt == "pt2":
        program = torch.export.export(model, (x,), dynamic_shapes=shapes, strict=False)
        return program, program
    # weights inline: zoo's models are far below protobuf's 2 GB
    onnx_program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=shapes, opset_version=opset,
                                     input_names=["images"], output_names=["logits"], verbose=False, report=False,
                                     external_data=False)
    return onnx_program.model_proto, onnx_program.exported_program


def _write(artifact: Any, fmt: str, path: Path, doc: Mapping[str, Any]) -> None:
    """Write the ONNX model with its ``metadata_props``, or the program with ``zoo.json``, atomically."""
    if fmt == "onnx":
        import onnx

        onnx.helper.set_model_props(artifact, flat_onnx_metadata(doc))
        atomic_write_bytes(path, artifact.SerializeToString())
        return
    atomic_write(path, lambda tmp: torch.export.save(artifact, str(tmp),
                                                     extra_files={PT2_METADATA: json.dumps(doc)}))


def _opset_of(proto: Any) -> int:
    return int(next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")))


def _min_size(program: Any, stride: int) -> tuple[int, int]:
    """The smallest H and W the captured graph takes.

    ``torch.export`` may raise a dynamic size's lower bound while tracing (smp's FPN needs two stride blocks: its
    graph asserts H > 32); the bound is in the program's ``range_constraints``.
    """
    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    sizes = []
    for dim in node.meta["val"].shape[2:]:
        if not isinstance(dim, torch.SymInt):
            sizes.append(int(dim))
            continue
        expr = dim.node.expr
        lows = {s: program.range_constraints[s].lower for s in expr.free_symbols if s in program.range_constraints}
        sizes.append(max(int(expr.subs(lows)), stride))
    return sizes[0], sizes[1]


def parity_shapes(in_channels: int, stride: int, input_size: tuple[int, int] | None, min_size: tuple[int, int],
                  image_size: int) -> list[tuple[int, int, int, int]]:
    """The inputs of the parity check: batches 1 and 3 at a fixed size; three sizes and batches when dynamic."""
    if input_size is not None:
        return [(1, in_channels, *input_size), (3, in_channels, *input_size)]
    (h, w), side = min_size, _round_up(image_size, stride)
    return [(1, in_channels, h, w + stride), (2, in_channels, max(side, h), max(side, w)),
            (3, in_channels, h + 2 * stride, w)]


@torch.inference_mode()
def check_parity(model: nn.Module, path: str | Path, *, in_channels: int, stride: int,
                 input_size: tuple[int, int] | None, min_size: tuple[int, int], image_size: int,
                 seed: int = 0) -> list[ParityCase]:
    """Run the exported file and the eager fp32 ``model`` on the same normalised random images.

    Args:
        model: the checkpoint's model (CPU, fp32, eval).
        path: the exported file, run by ONNX Runtime (CPU execution provider) or as a loaded ``ExportedProgram``.
        in_channels, stride, input_size, min_size, image_size: what the file takes (see :func:`parity_shapes`).
        seed: for the random images.

    Returns:
        One case per input shape: the largest absolute logit difference and whether the masks are identical.
    """
    from zoo.data import normalize_image

    deployed, _ = load_deployed(path)
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for shape in parity_shapes(in_channels, stride, input_size, min_size, image_size):
        x = normalize_image(torch.rand(shape, generator=generator))
        expected, got = model(x).float(), deployed(x)
        cases.append(ParityCase(tuple(shape), float((expected - got).abs().max()),
                                bool(torch.equal(logits_to_classes(expected), logits_to_classes(got)))))
    return cases


# ------------------------------------------------------------------------------------------------------------
# Failures in one line


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return chain


def _user_frame(chain: Sequence[BaseException]) -> str | None:
    """``file:line (code)`` of the innermost frame outside torch, the exporters, the stdlib and this module."""
    skip = (str(Path(torch.__file__).parent), sysconfig.get_paths()["stdlib"], __file__, "onnxscript", "onnx_ir",
            "/onnx/", "/sympy/")
    for exc in reversed(chain):
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(skip[:3])
                  and not any(s in f.filename for s in skip[3:])]
        if frames:
            frame = frames[-1]
            return f"{Path(frame.filename).name}:{frame.lineno} ({(frame.line or '').strip()})"
    return None


def describe_failure(exc: BaseException) -> str:
    """One line naming what could not be exported: the operator, or the construct and where it is."""
    chain = _chain(exc)
    inner = chain[-1]
    first = " ".join(str(inner).strip().splitlines()[0].split()) if str(inner).strip() else ""
    text = "\n".join(str(e) for e in chain)
    op = re.search(r"op='(aten\.\w+)'", text) or re.search(r"\b(aten\.\w+)", text)
    if "No ONNX function found" in text and op:
        what = f"operator {op.group(1)} has no ONNX translation"
    elif "data-dependent" in text:
        what = f"a branch or size that depends on tensor values ({type(inner).__name__})"
    else:
        what = f"{type(inner).__name__}: {first[:200]}" + (f" (operator {op.group(1)})" if op else "")
    where = _user_frame(chain)
    return what + (f" at {where}" if where else "")


# ------------------------------------------------------------------------------------------------------------
# Deployment-runtime speed (for the leaderboard)


def deployed_speed(checkpoint: str | Path, out: str | Path, *, image_size: int | tuple[int, int], batch_size: int,
                   repeats: int, threads: int | None = None, registries: Registries | None = None) -> dict[str, float]:
    """ONNX Runtime latency at batch 1 and throughput at ``batch_size``, measured like the eager columns.

    Exports ``checkpoint`` to ``out`` (fixed size where the recipe allows, as a user would deploy it; no parity
    check) and times the file through ``zoo.bench.cell.measure_inference``, the function that measures the
    leaderboard's eager ``infer_*`` columns: random ``image_size`` squares, median of ``repeats`` after warm-up.

    Returns:
        ``ort_images_per_s``, ``ort_latency_ms`` and ``ort_batch_size``.
    """
    from zoo.bench.cell import measure_inference
    from zoo.precision import Precision

    result = export_checkpoint(checkpoint, format="onnx", out=out, check=False, registries=registries)
    model, meta = load_deployed(result.path, threads=threads)
    speed = measure_inference(model, Precision("cpu", "fp32"), in_channels=int(meta["in_channels"]),
                              image_size=image_size, batch_size=batch_size, repeats=repeats)
    return {"ort_images_per_s": speed["infer_images_per_s"], "ort_latency_ms": speed["infer_latency_ms"],
            "ort_batch_size": batch_size}
