#!/usr/bin/env bash
# The committed benchmark of results/README.md ("planned-grid"), resumable: rerun to continue where it stopped.
# Stage 1 runs seeds 0-2 of every cell so an interrupted grid still covers every dataset and model; stage 2 adds
# seeds 3-5; stage 3 trains the DRIVE reproduction (unet, the planner's recipe at 540 TFLOPs, four times the
# default profile's compute). Then the tables: zoo leaderboard and the README blocks.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${ZOO_DATA:-../shared/data}
GRID=(--config results/planned-grid.toml --data-dir "$DATA" --out results/planned-grid)
zoo bench "${GRID[@]}" --seeds 0,1,2
zoo bench "${GRID[@]}"
zoo bench --models unet --datasets drive --data-dir "$DATA" --seeds 0,1,2 --budget "540 tflops" \
    --out results/drive-reproduction
# the pages show test images of the synthetic set only: the real sets' terms forbid redistributing their pixels
README=(--readme results/README.md --published docs/published-figures.csv)
zoo --data-dir "$DATA" leaderboard results/planned-grid --samples shapes "${README[@]}"
zoo --data-dir "$DATA" leaderboard results/drive-reproduction --samples none "${README[@]}"
