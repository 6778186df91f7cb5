"""Benchmark plans, records and leaderboard statistics, without training (cells are synthesised)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoo import api
from zoo.bench.grid import PROFILES, expand_grid, make_plan, parse_shard, select_shard
from zoo.bench.locks import CellLock
from zoo.bench.records import prune_checkpoints, read_json, read_records, write_json
from zoo.bench.report import write_leaderboard
from zoo.bench.stats import bootstrap_ci
from zoo.cli import main
from zoo.errors import OptionError, UnknownNameError


@pytest.fixture
def reg():
    return api.load_registry()


def test_plan_defaults_to_shapes_and_the_default_profile(reg):
    plan = make_plan(models="unet,unet-attn", registries=reg)
    assert plan.datasets == ("shapes",)
    assert plan.profile == "default" and plan.seeds == PROFILES["default"].seeds
    assert plan.name == "shapes_unet+unet-attn"
    cells = expand_grid(plan, registries=reg)
    assert len(cells) == 2 * len(plan.seeds)
    # one planned recipe for every cell: only model, seed and the steps that equal training compute buys differ
    per_model = ("model", "seed", "max_steps", "val_every")
    recipes = {json.dumps({k: v for k, v in c.config.items() if k not in per_model}, sort_keys=True)
               for c in cells}
    assert len(recipes) == 1 and plan.planned
    assert {c.plan["budget"]["tflops"] <= 0.25 for c in cells} == {True}
    # the profile's width for shapes (a CPU-sized demo), under the profile's width elsewhere
    assert cells[0].config["model_options"] == {"width": 8} and PROFILES["default"].model == {"width": 16}
    assert make_plan(models="unet", registries=reg, overrides={"width": 4}).cells[0].config["model_options"] == {
        "width": 4}  # an explicit width beats the profile's, on every dataset


def test_overrides_and_axes_expand_the_grid(reg):
    config = {"train": {"metrics": ["dice"]}, "axes": {"width": [4, 8], "loss": ["dice", "bce"]}}
    plan = make_plan(models="unet", seeds="0,1", profile="quick", config=config, registries=reg,
                     overrides={"epochs": 3, "image_size": 48, "batch_size": None})
    cells = expand_grid(plan, registries=reg)
    assert len(cells) == 2 * 2 * 2
    assert len({c.cell_id for c in cells}) == len(cells)
    assert len({c.config_hash for c in cells}) == len(cells)
    cell = next(c for c in cells if dict(c.axes) == {"width": 8, "loss": "bce"} and c.seed == 1)
    assert cell.config["model_options"]["width"] == 8 and cell.config["loss"] == "bce"
    assert cell.config["epochs"] == 3 and cell.config["image_size"] == 48
    assert cell.config["dataset_options"]["image_size"] == 48  # shapes renders at the training size
    assert cell.variant == "unet[width=8,loss=bce]"


def test_bad_plans_name_the_problem(reg):
    with pytest.raises(UnknownNameError, match="unet-atn"):
        make_plan(models="unet-atn", registries=reg)
    with pytest.raises(OptionError, match="bogus"):
        make_plan(models="unet", config={"train": {"bogus": 1}}, registries=reg)
    with pytest.raises(OptionError, match="wdth"):
        make_plan(models="unet", config={"axes": {"wdth": [1, 2]}}, registries=reg)
    with pytest.raises(OptionError, match="I/N"):
        parse_shard("3/2")


def test_shards_partition_the_grid(reg):
    plan = make_plan(models="unet,unet-attn,unet-res", seeds="0,1,2", registries=reg)
    cells = expand_grid(plan, registries=reg)
    parts = [select_shard(cells, (i, 4)) for i in range(1, 5)]
    ids = [c.cell_id for part in parts for c in part]
    assert sorted(ids) == sorted(c.cell_id for c in cells) and len(ids) == len(set(ids))


def test_bench_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "exit status: 0 only when every cell" in capsys.readouterr().out


def test_cell_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    path = tmp_path / "c.lock"
    first, second = CellLock(path), CellLock(path)
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    path.write_text(json.dumps({"host": __import__("socket").gethostname(), "pid": 2**22 + 12345}))
    assert CellLock(path).acquire()  # the holder's pid does not exist: stale


def _fake_run(folder: Path, status: str = "ok") -> Path:
    """A recorded cell folder laid out as ``zoo.training.run`` and the cell process leave it."""
    run = folder / "run"
    run.mkdir(parents=True)
    for name in ("last.safetensors", "last.pt", "best.safetensors", ".last.pt.4242.tmp", "log.jsonl",
                 "config.json", "test_per_image.csv"):
        (run / name).write_bytes(b"x" * 10)
    checkpoints = {"last": str(run / "last.safetensors"), "best": str(run / "best.safetensors")}
    (run / "result.json").write_text(json.dumps({"status": status, "best_score": float("nan"),
                                                 "checkpoints": checkpoints}))
    write_json(folder / "record.json", {"cell_id": folder.name, "status": status, "checkpoints": checkpoints})
    return run


@pytest.mark.parametrize("keep, status, left", [
    ("best", "ok", {"best.safetensors"}),
    ("best", "diverged", {"best.safetensors"}),
    ("none", "ok", set()),
    ("all", "ok", {"last.safetensors", "last.pt", "best.safetensors", ".last.pt.4242.tmp"}),
    ("none", "timeout", {"last.safetensors", "last.pt", "best.safetensors", ".last.pt.4242.tmp"}),
])
def test_a_recorded_cell_keeps_only_what_its_policy_says(tmp_path, keep, status, left):
    run = _fake_run(tmp_path / "c", status)
    deleted = prune_checkpoints(tmp_path / "c", keep, status=status)
    weights_or_state = {p.name for p in run.iterdir() if p.suffix in (".safetensors", ".pt", ".tmp")}
    assert weights_or_state == left and not {p.name for p in deleted} & left
    assert {"log.jsonl", "config.json", "test_per_image.csv", "result.json"} <= {p.name for p in run.iterdir()}
    # the record and the run's result name only the checkpoints that are still there
    for data in (read_json(tmp_path / "c" / "record.json"), json.loads((run / "result.json").read_text())):
        assert {Path(v).name for v in data["checkpoints"].values()} == left & {"last.safetensors",
                                                                               "best.safetensors"}
    assert math.isnan(json.loads((run / "result.json").read_text())["best_score"])  # format kept


def test_prune_rejects_an_unknown_policy(tmp_path):
    _fake_run(tmp_path / "c")
    with pytest.raises(UnknownNameError, match="'some'.*all, best, none"):
        prune_checkpoints(tmp_path / "c", "some")
    assert (tmp_path / "c" / "run" / "last.pt").exists()


@pytest.mark.parametrize("flags, keep", [((), "best"), (("--keep-checkpoints",), "all"),
                                         (("--drop-weights",), "none")])
def test_bench_checkpoint_flags_reach_the_harness(tmp_path, monkeypatch, flags, keep):
    from zoo.bench import runner

    seen = {}

    def fake_run_benchmark(plan, out, **kwargs):
        seen.update(kwargs)
        return runner.BenchSummary(out=Path(out))

    monkeypatch.setattr(runner, "run_benchmark", fake_run_benchmark)
    assert main(["bench", "--models", "unet", "--profile", "quick", "--out", str(tmp_path), *flags]) == 0
    assert seen["keep_checkpoints"] == keep


def test_keep_checkpoints_and_drop_weights_exclude_each_other(capsys):
    assert main(["bench", "--models", "unet", "--keep-checkpoints", "--drop-weights"]) == 2
    assert "not allowed with" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# Leaderboard statistics on synthesised records


def _synth(out: Path, rng: np.random.Generator, *, datasets=("a", "b"), models=("m1", "m2", "m3"),
           seeds=(0, 1, 2), n_images=12, failed=("b", "m3", 2)) -> None:
    for d, dataset in enumerate(datasets):
        for m, model in enumerate(models):
            for seed in seeds:
                cell_id = f"{dataset}__{model}__s{seed}"
                folder = out / "cells" / cell_id
                folder.mkdir(parents=True)
                status = "failed" if (dataset, model, seed) == failed else "ok"
                values = np.clip(rng.normal(0.5 + 0.1 * m - 0.05 * d, 0.1, n_images), 0, 1)
                values[0] = np.nan  # an undefined image, left out of the mean
                record = {"cell_id": cell_id, "dataset": dataset, "model": model, "variant": model, "seed": seed,
                          "status": status, "metrics": {}, "n_parameters": 1000 * (m + 1),
                          "infer_images_per_s": 100.0 / (m + 1), "higher_is_better": {"dice": True},
                          "config": {"select_metric": "dice", "metrics": ["dice"]},
                          "history": [{"epoch": 1, "train_loss": 1.0, "val/dice": 0.3},
                                      {"epoch": 2, "train_loss": 0.5, "val/dice": 0.6}]}
                if status == "ok":
                    record["metrics"] = {"dice": float(np.nanmean(values)), "dice_pooled": float(np.nanmean(values))}
                    lines = ["image_id,metric,value"] + [f"img{i},dice,{float(v)!r}" for i, v in enumerate(values)]
                    (folder / "per_image.csv").write_text("\n".join(lines) + "\n")
                else:
                    record["error"] = "RuntimeError: boom"
                write_json(folder / "record.json", record)
    write_json(out / "plan.json", {"name": "synth", "models": list(models), "datasets": list(datasets),
                                   "seeds": list(seeds), "profile": "quick"})


def test_leaderboard_matches_pandas_on_runs_csv(tmp_path):
    _synth(tmp_path, np.random.default_rng(0))
    written = write_leaderboard([tmp_path], tmp_path, plots=False)
    frames = {name: pd.read_csv(path) for name, path in written.items() if path.suffix == ".csv"}  # no options
    runs, board = frames["runs"], frames["leaderboard"]
    assert len(runs) == 18 and (runs["status"] == "failed").sum() == 1
    ok = runs[runs["status"] == "ok"]
    expected = ok.groupby(["dataset", "variant"])["dice"].agg(["mean", "std", "count"]).reset_index()
    merged = board.merge(expected, on=["dataset", "variant"])
    assert len(merged) == 6
    np.testing.assert_allclose(merged["dice_mean"], merged["mean"], rtol=1e-12)
    np.testing.assert_allclose(merged["dice_std"], merged["std"], rtol=1e-12)
    assert (merged["n_seeds"] == merged["count"]).all()
    assert ((board["dice_ci_low"] <= board["dice_mean"]) & (board["dice_mean"] <= board["dice_ci_high"])).all()
    # rank 1 = highest mean dice, per dataset
    for dataset, part in board.groupby("dataset"):
        assert part.sort_values("rank")["variant"].tolist() == \
            part.sort_values("dice_mean", ascending=False)["variant"].tolist()
    overall = frames["overall"]
    mean_rank = board.groupby("variant")["rank"].mean()
    for _, row in overall.iterrows():
        assert row["mean_rank"] == pytest.approx(mean_rank[row["variant"]])
    assert overall["variant"].iloc[0] == "m3"
    # the per-image table is tidy and complete: 17 ok cells x 12 images
    per_image = frames["per_image"]
    assert list(per_image.columns) == ["cell_id", "dataset", "model", "variant", "seed", "image_id", "metric",
                                       "value"]
    assert len(per_image) == 17 * 12
    _check_verdict_tables(frames, per_image)
    markdown = written["markdown"].read_text()
    assert "| 1 | m3 |" in markdown and "boom" in markdown


def _check_verdict_tables(frames: dict[str, pd.DataFrame], per_image: pd.DataFrame) -> None:
    """comparison.csv, pairs.csv and the rank columns against direct computations (issue 13)."""
    from scipy.stats import wilcoxon

    from zoo.bench.verdicts import min_seeds

    comparison = frames["comparison"]
    assert list(comparison.columns[:7]) == ["dataset", "metric", "variant", "baseline", "n_seeds",
                                            "n_seeds_baseline", "n_images"]
    for column in ("mean_difference", "ci_low", "ci_high", "p_improvement", "p_improvement_low",
                   "p_improvement_high", "p_value", "p_adjusted", "verdict"):
        assert column in comparison.columns and f"model_{column}" in comparison.columns
    assert set(comparison["baseline"]) == {"m1"} and len(comparison) == 4
    assert (comparison["p_adjusted"] >= comparison["p_value"]).all()
    row = comparison[(comparison["dataset"] == "a") & (comparison["variant"] == "m2")].iloc[0]
    cells = per_image[per_image["dataset"] == "a"].pivot_table(index="image_id", columns=["model", "seed"],
                                                              values="value").dropna()
    assert row["n_images"] == len(cells) == 11 and row["n_seeds"] == row["n_seeds_baseline"] == 3
    seed_means = cells.mean()
    assert row["mean_difference"] == pytest.approx(seed_means["m2"].mean() - seed_means["m1"].mean())
    assert row["ci_low"] < row["mean_difference"] < row["ci_high"]
    images = cells["m2"].mean(axis=1) - cells["m1"].mean(axis=1)  # model comparison: images, seed-averaged
    assert row["model_p_value"] == pytest.approx(wilcoxon(images).pvalue)
    assert row["model_p_improvement"] == pytest.approx((images > 0).mean())
    # 3 v 3 seeds cannot reach Holm's first step over 4 comparisons: the verdict says how many would
    assert row["verdict"] == f"too few seeds for a verdict (need {min_seeds(0.05 / 4)} per variant)"
    assert comparison.loc[(comparison["dataset"] == "b") & (comparison["variant"] == "m3"), "n_seeds"].item() == 2
    pairs = frames["pairs"]
    assert len(pairs) == 2 * 3 and {"variant_a", "variant_b", "p_adjusted", "verdict"} <= set(pairs.columns)
    board = frames["leaderboard"]
    assert ((board["rank_low"] <= board["rank"]) & (board["rank"] <= board["rank_high"])).all()
    assert (board["tied_for_first"] == (board["rank_low"] == 1)).all()
    assert board["beats_floor"].isna().all()  # the synthetic datasets have no masks, so no floors
    separation = frames["separation"]
    assert list(separation["dataset"]) == ["a", "b"] and (separation["n_pairs"] == 3).all()
    assert np.allclose(separation["model_share"] + separation["seed_share"], 1)
    assert len(frames["seed_advice"]) == 2 * 3


def test_leaderboard_page_has_separation_seed_advice_and_says_when_floors_are_missing(tmp_path):
    _synth(tmp_path, np.random.default_rng(0), datasets=("a",))
    markdown = write_leaderboard([tmp_path], tmp_path, plots=False)["markdown"].read_text()
    floors_line = [line for line in markdown.splitlines() if "floors" in line.lower() and "`a`" in line]
    assert len(floors_line) == 1 and floors_line[0].startswith("No floors for `a`")
    assert "**Separation:** At this budget, `a` separates 0 of 3 pairs; seeds explain" in markdown
    assert "Seeds needed for a recipe verdict at 80% power" in markdown
    for delta in ("| 0.01 |", "| 0.02 |", "| 0.05 |"):
        assert delta in markdown
    assert "dice (per-image mean)" in markdown and "dice (pooled)" in markdown
    assert "## Recipe verdicts against the baseline" in markdown and "## Model comparisons" in markdown


def test_bootstrap_interval_is_seeded_and_sane():
    rng = np.random.default_rng(1)
    values = rng.normal(0.7, 0.1, (3, 40))
    first = bootstrap_ci(values, np.random.default_rng(5))
    assert first == bootstrap_ci(values, np.random.default_rng(5))
    assert first[0] < values.mean() < first[1] and first[1] - first[0] < 0.1
    assert bootstrap_ci(np.full((2, 5), 0.25), np.random.default_rng(0)) == (0.25, 0.25)
    assert all(math.isnan(v) for v in bootstrap_ci(np.full((2, 5), np.nan), np.random.default_rng(0)))


def test_leaderboard_command_merges_dirs_and_draws_plots(tmp_path):
    rng = np.random.default_rng(2)
    _synth(tmp_path / "s1", rng, datasets=("a",))
    _synth(tmp_path / "s2", rng, datasets=("b",))
    assert main(["leaderboard", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "all")]) == 0
    board = pd.read_csv(tmp_path / "all" / "leaderboard.csv")
    assert set(board["dataset"]) == {"a", "b"}
    assert len(read_records([tmp_path / "s1", tmp_path / "s2"])) == 18
    for name in ("bar_dice.png", "cost_dice.png", "curves.png"):
        assert (tmp_path / "all" / "plots" / name).stat().st_size > 1000
    assert main(["leaderboard", str(tmp_path / "nothing")]) == 2


def test_the_cost_plot_puts_gmacs_where_a_dataset_s_timings_cannot_be_compared(tmp_path):
    from zoo.bench.plots import _cost_panels, cost_scatter

    board = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "model": ["m", "n", "m", "n"],
                          "variant": ["m", "n", "m", "n"], "dice_mean": [0.8, 0.7, 0.6, 0.65],
                          "infer_images_per_s": [10.0, 400.0, 9.0, 11.0], "gmacs": [5.0, 4.0, 5.0, 4.0],
                          "n_parameters": [2e6, 24e6, 2e6, 24e6]})
    # b's timings are comparable: inference speed; a's are not (threads differ): the recipe's GMACs instead
    assert [c for c, _, _ in _cost_panels(board, "b", {"a"})] == ["infer_images_per_s", "n_parameters"]
    assert [(c, lower) for c, _, lower in _cost_panels(board, "a", {"a"})] == [("gmacs", True), ("n_parameters", True)]
    assert "timings not comparable" in _cost_panels(board, "a", {"a"})[0][1]
    assert cost_scatter(board, "dice", tmp_path / "cost.png", untimed={"a"}).stat().st_size > 1000
    # no cost column at all: nothing to draw
    assert cost_scatter(board.drop(columns=["infer_images_per_s", "gmacs", "n_parameters"]), "dice",
                        tmp_path / "none.png") is None


def test_pareto_front_keeps_only_undominated_points():
    from zoo.bench.plots import pareto_front

    assert pareto_front([1, 2, 3, 4], [0.5, 0.4, 0.9, 0.8], lower_cost_is_better=True) == [0, 2]
    assert pareto_front([1, 2, 3, 4], [0.5, 0.4, 0.9, 0.8], lower_cost_is_better=False) == [3, 2]


def test_runs_csv_rows_carry_the_recipe_from_the_record():
    import re
    from pathlib import Path

    from zoo.bench.records import CellRecord
    from zoo.bench.tables import RUN_COLUMNS_TAIL, BenchmarkRow, row_dict

    record = CellRecord(cell_id="c", dataset="d", model="m", variant="m", seed=0, status="ok", loss="bce",
                        config={"optimizer": "adamw", "lr": 0.003, "schedule": "cosine", "loss": None,
                                "augment": "light", "max_steps": 100})
    row = row_dict(BenchmarkRow.from_record(record))
    assert (row["optimizer"], row["lr"], row["schedule"], row["loss"], row["augment"], row["max_steps"]) == (
        "adamw", 0.003, "cosine", "bce", "light", 100)
    # the README documents every runs.csv column, in order
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if ln.startswith("| `runs.csv` |"))
    documented = [name.strip() for chunk in re.findall(r"`([^`]+)`", line) for name in chunk.split(",")]
    tail = [c for c in documented if c in RUN_COLUMNS_TAIL]
    assert tail == list(RUN_COLUMNS_TAIL)


def test_the_grid_is_expanded_once_and_runs_csv_kept_without_rescanning(tmp_path, monkeypatch, reg):
    """make_plan expands the grid; the runner uses those cells and keeps its records in memory for runs.csv."""
    from zoo.bench import grid, runner
    from zoo.bench.cell import base_record

    plan = make_plan(models="unet,unet-attn", profile="quick", seeds="0,1", registries=reg)
    assert len(plan.cells) == 4
    calls = {"expand": 0, "read_records": 0}

    def counting(name, real):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapped

    def fake_launch(cell, directory, **kwargs):
        record = base_record(cell, profile="quick")
        record.update(status="ok", metrics={"dice": 0.5})
        write_json(directory / "record.json", record.to_json())
        return record

    monkeypatch.setattr(grid, "expand_grid", counting("expand", grid.expand_grid))
    monkeypatch.setattr(runner, "expand_grid", counting("expand", runner.expand_grid))
    monkeypatch.setattr(runner, "read_records", counting("read_records", runner.read_records))
    monkeypatch.setattr(runner, "launch_cell", fake_launch)
    summary = runner.run_benchmark(plan, tmp_path, render=False)
    assert summary.ok and len(summary.ran) == 4
    assert calls == {"expand": 0, "read_records": 1}  # the plan's cells; one scan of the folder, at the start
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(runs["cell_id"]) == sorted(c.cell_id for c in plan.cells) and (runs["dice"] == 0.5).all()


def _fake_gpu(monkeypatch, capability=(7, 0)):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)


def test_cells_hash_the_resolved_runtime_and_gpu_profiles_are_not_deterministic(reg, monkeypatch):
    import torch

    from zoo.precision import cpu_has_native_bf16

    auto = {"train": {"deterministic": "auto"}}  # what the CPU profiles (quick, default) say
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = make_plan(models="unet", profile="quick", config=auto, registries=reg).cells[0]
    assert cpu.runtime == {"device": "cpu", "precision": "bf16" if cpu_has_native_bf16() else "fp32"}
    assert cpu.config["device"] == "auto" and cpu.config["deterministic"] is True  # "auto" on the CPU
    _fake_gpu(monkeypatch, (7, 0))
    v100 = make_plan(models="unet", profile="quick", config=auto, registries=reg).cells[0]
    assert v100.runtime == {"device": "cuda", "precision": "fp16"}
    assert v100.config["deterministic"] is False  # GPU recipes are non-deterministic by default
    assert len({cpu.config_hash, v100.config_hash}) == 2
    _fake_gpu(monkeypatch, (9, 0))
    h100 = make_plan(models="unet", profile="quick", config=auto, registries=reg).cells[0]
    assert h100.runtime == {"device": "cuda", "precision": "bf16"} and h100.config_hash != v100.config_hash
    explicit = make_plan(models="unet", profile="quick", registries=reg, recipe={"train": {"deterministic": True}})
    assert explicit.cells[0].config["deterministic"] is True  # asked for: kept (and checked up front in the run)
    assert json.loads(json.dumps(h100.to_json()))["runtime"] == h100.runtime
    from zoo.bench.grid import Cell

    assert Cell.from_json(h100.to_json()) == h100


def test_a_gpu_run_refuses_a_cpu_folder_but_continues_a_cpu_folder_of_before(tmp_path, reg, monkeypatch):
    import dataclasses

    import torch

    from zoo.bench.runner import run_benchmark

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    plan = make_plan(models="unet", profile="quick", registries=reg)
    cell = plan.cells[0]
    folder = tmp_path / "cells" / cell.cell_id
    folder.mkdir(parents=True)
    legacy = dataclasses.replace(cell, runtime=None)  # a cell.json written before runtimes were recorded
    write_json(folder / "cell.json", legacy.to_json())
    from zoo.bench.runner import _check_recipes

    _check_recipes(plan.cells, tmp_path, force=False)  # same recipe, and this host is a CPU: accepted
    write_json(folder / "cell.json", cell.to_json())
    _fake_gpu(monkeypatch, (8, 0))
    gpu = make_plan(models="unet", profile="quick", registries=reg)
    with pytest.raises(OptionError, match=r"it ran on cpu/\w+, this host resolves cuda/bf16"):
        run_benchmark(gpu, tmp_path, registries=reg, render=False)
    write_json(folder / "cell.json", legacy.to_json())
    with pytest.raises(OptionError, match="different recipe"):  # an old CPU folder is never continued on a GPU
        run_benchmark(gpu, tmp_path, registries=reg, render=False)


def test_peak_memory_is_never_averaged_across_cuda_and_rss():
    from zoo.bench.leaderboard import leaderboard_table

    runs = pd.DataFrame({"cell_id": ["a", "b", "c", "d"], "dataset": ["shapes"] * 4, "model": ["m", "m", "n", "n"],
                         "variant": ["m", "m", "n", "n"], "status": ["ok"] * 4, "dice": [0.5, 0.6, 0.7, 0.8],
                         "peak_memory_mb": [100.0, 3000.0, 200.0, 300.0],
                         "memory_kind": ["cuda_max_allocated", "process_max_rss"] + ["cuda_max_allocated"] * 2})
    per_image = pd.DataFrame(columns=["cell_id", "image_id", "metric", "value"])
    table = leaderboard_table(runs, per_image, metric_names=["dice"], main_metric="dice",
                              higher_is_better={"dice": True}, n_boot=10).set_index("variant")
    assert math.isnan(table.loc["m", "peak_memory_mb"]) and table.loc["n", "peak_memory_mb"] == 250.0


def test_timings_are_medians_and_a_shared_machine_is_said_not_hidden():
    from zoo.bench.leaderboard import leaderboard_table, timing_caveat

    def runs(seconds: dict[str, list[float]], threads: list[int] | None = None) -> pd.DataFrame:
        rows = [{"cell_id": f"{v}{i}", "dataset": "shapes", "model": v, "variant": v, "status": "ok", "dice": 0.5,
                 "train_seconds": t, "infer_images_per_s": 100.0 / t, "device_name": "cpu"}
                for v, ts in seconds.items() for i, t in enumerate(ts)]
        frame = pd.DataFrame(rows)
        return frame.assign(threads=threads) if threads else frame

    quiet = runs({"m": [10.0, 11.0, 12.0], "n": [20.0, 21.0, 22.0]})
    assert timing_caveat(quiet, "shapes") is None  # same machine, same threads, steady: timings compare
    shared = runs({"m": [10.0, 11.0, 60.0], "n": [20.0, 21.0, 22.0]})
    table = leaderboard_table(shared, pd.DataFrame(columns=["cell_id", "image_id", "metric", "value"]),
                              metric_names=["dice"], main_metric="dice", higher_is_better={"dice": True},
                              n_boot=10).set_index("variant")
    assert table.loc["m", "train_seconds"] == 11.0 and table.loc["n", "train_seconds"] == 21.0  # medians
    assert timing_caveat(shared, "shapes") == (
        "**Timings** (train s, infer img/s: medians over seeds) are not comparable across variants here: training "
        "time varies over seeds of the same work (`m` x6.0): other jobs shared the machine. GMACs and parameters "
        "are the comparable costs.")
    mixed = timing_caveat(runs({"m": [10.0, 11.0], "n": [20.0, 21.0]}, threads=[2, 2, 1, 1]), "shapes")
    assert mixed is not None and "cells ran on 2 thread counts (1, 2)" in mixed
    assert timing_caveat(quiet, "other") is None


def test_the_cpu_profiles_train_non_deterministically_on_a_gpu(reg, monkeypatch):
    for name in ("quick", "default"):
        assert PROFILES[name].train["deterministic"] == "auto"
    _fake_gpu(monkeypatch, (8, 0))
    cell = make_plan(models="unet-bilinear", profile="quick", registries=reg).cells[0]
    assert cell.runtime["device"] == "cuda" and cell.config["deterministic"] is False


def test_a_leaderboard_of_failed_cells_still_renders(tmp_path):
    # every cell of the baseline failed, and a grid where nothing at all was scored
    _synth(tmp_path / "no-baseline", np.random.default_rng(1), datasets=("a",), models=("m1", "m2"), seeds=(0,),
           failed=("a", "m1", 0))
    _synth(tmp_path / "nothing", np.random.default_rng(1), datasets=("a",), models=("m1",), seeds=(0,),
           failed=("a", "m1", 0))
    for folder in ("no-baseline", "nothing"):
        write_leaderboard([tmp_path / folder], tmp_path / folder, plots=False)
        page = (tmp_path / folder / "leaderboard.md").read_text()
        board = pd.read_csv(tmp_path / folder / "leaderboard.csv")
        assert "m1" in page and board.loc[board["variant"] == "m1", "n_failed"].item() == 1
