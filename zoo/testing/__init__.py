"""Contract checks for zoo plugins, for zoo's own tests and for any plugin package's test suite.

In the spirit of scikit-learn's ``check_estimator``/``parametrize_with_checks``: every check is a plain function
that raises ``AssertionError`` on a violation, and two kinds of entry point run them::

    from zoo.testing import check_model_plugin, parametrize_with_checks

    check_model_plugin("my-model")            # runs every model check; raises CheckFailed naming the failures
    results = check_model_plugin(my_builder, raise_on_failure=False)   # list[CheckResult]

    @parametrize_with_checks(my_package.plugin)   # one pytest test per (spec, check), ids "model:my-model:backward"
    def test_my_plugin(plugin, check):
        check(plugin)

The same pattern covers datasets (``check_dataset_plugin``: metadata, disjoint splits, item dtypes/shapes/ranges,
determinism) and metrics (``check_metric_plugin``: hand-computed cases, NaN rules, reset, ignore_index).
``parametrize_with_checks`` also takes registered names or bare builders (``models=["my-model"]``,
``metrics=[my_metric_builder]``) and per-plugin arguments (``overrides``).

Model checks build the model at a small size: by default ``SMALL_MODEL_OPTIONS`` (``width=4, depth=3``),
keeping only the options the builder takes; pass ``options={}`` for the builder's defaults. Inputs are 32-48 px.

One module per kind: ``zoo.testing.models``, ``zoo.testing.datasets``, ``zoo.testing.metrics``; results and the
runner are in ``zoo.testing.common`` and the pytest helper in ``zoo.testing.parametrize``. Import from
``zoo.testing``: its ``__all__`` below is the kit's public API.
"""

from __future__ import annotations

from zoo.testing.common import CheckFailed, CheckResult, CheckSkipped, Kind, Status, check_name
from zoo.testing.datasets import (
    DATASET_CHECKS,
    MAX_ITEMS,
    SMALL_DATASET_OPTIONS,
    DatasetCase,
    check_dataset_plugin,
    check_determinism,
    check_items,
    check_metadata,
    check_splits,
)
from zoo.testing.metrics import (
    METRIC_CHECKS,
    METRIC_SIZE,
    MetricCase,
    check_both_empty,
    check_columns,
    check_empty_target,
    check_ignore_index,
    check_metric_plugin,
    check_perfect_prediction,
    check_reset,
    check_total_miss,
)
from zoo.testing.models import (
    BATCH,
    MODEL_CHECKS,
    ODD_SIZE,
    SIZE,
    SMALL_MODEL_OPTIONS,
    ModelCase,
    check_backward,
    check_cuda_determinism,
    check_deterministic_algorithms,
    check_eval_determinism,
    check_export,
    check_model_plugin,
    check_no_layers_in_forward,
    check_odd_input_size,
    check_output_shape,
    check_state_dict_round_trip,
    check_to_cuda,
    check_to_float64,
    check_train_batch_of_one,
    run_model_check,
)
from zoo.testing.parametrize import parametrize_with_checks, specs_of

__all__ = [
    # results
    "Status",
    "Kind",
    "CheckResult",
    "CheckFailed",
    "CheckSkipped",
    "check_name",
    # models
    "ModelCase",
    "SMALL_MODEL_OPTIONS",
    "BATCH",
    "SIZE",
    "ODD_SIZE",
    "MODEL_CHECKS",
    "check_model_plugin",
    "run_model_check",
    "check_output_shape",
    "check_odd_input_size",
    "check_backward",
    "check_train_batch_of_one",
    "check_deterministic_algorithms",
    "check_cuda_determinism",
    "check_eval_determinism",
    "check_no_layers_in_forward",
    "check_state_dict_round_trip",
    "check_to_float64",
    "check_to_cuda",
    "check_export",
    # datasets
    "DatasetCase",
    "SMALL_DATASET_OPTIONS",
    "MAX_ITEMS",
    "DATASET_CHECKS",
    "check_dataset_plugin",
    "check_metadata",
    "check_splits",
    "check_items",
    "check_determinism",
    # metrics
    "MetricCase",
    "METRIC_SIZE",
    "METRIC_CHECKS",
    "check_metric_plugin",
    "check_perfect_prediction",
    "check_total_miss",
    "check_both_empty",
    "check_empty_target",
    "check_columns",
    "check_reset",
    "check_ignore_index",
    # pytest
    "specs_of",
    "parametrize_with_checks",
]
