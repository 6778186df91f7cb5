"""A training run by name: the recipe (:class:`TrainConfig`), :func:`run` and :func:`evaluate_checkpoint`.

This is the stable API that ``zoo train`` / ``zoo eval`` / ``zoo predict`` and the benchmark harness call. ``run``
builds the dataset, model, loss and metrics from the registries, fits on the train split with model selection on
val, then loads the best weights and scores the test split (never used for selection).

Outputs in ``out_dir``: ``config.json`` (the recipe), ``log.jsonl`` (one JSON object per epoch: losses, val
metrics, learning rate, seconds), checkpoints ``last`` and ``best`` (``.safetensors`` weights + ``.pt`` state,
see ``zoo.checkpoint``), ``test_per_image.csv`` and ``result.json``.

One module per concept:

- ``config``: the recipe and the result types (:class:`TrainConfig`, :class:`RunResult`).
- ``parts``: dataset, model, loss and metrics built by name, eval loaders, a model from a checkpoint.
- ``loop``: :func:`run`, the visible sequence of a run, with its helpers (processes, resume, scoring).
- ``checkpoints``: a run's ``last``/``best`` checkpoints, saving and resuming.
- ``evaluation``: :func:`evaluate_checkpoint` and :func:`write_eval_outputs`.
- ``prediction``: :func:`predict_files` (mask and overlay PNGs for image files).
"""

from __future__ import annotations

from zoo.engine import EvalResult
from zoo.training.config import RESUMABLE_CHANGES, RunResult, TrainConfig
from zoo.training.evaluation import evaluate_checkpoint, write_eval_outputs
from zoo.training.loop import run
from zoo.training.prediction import PREDICT_MODES, PredictionResult, predict_files

__all__ = ["TrainConfig", "RunResult", "EvalResult", "run", "evaluate_checkpoint", "write_eval_outputs",
           "predict_files", "PredictionResult", "PREDICT_MODES", "RESUMABLE_CHANGES"]
