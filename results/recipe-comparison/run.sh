#!/usr/bin/env bash
# The planned recipe against the old resize recipe at equal training compute (8 TFLOPs per cell), on the three
# shared sets besides DRIVE, two seeds each, both scored on the same native-resolution test pixels. Resumable:
# rerun to continue. Tables: python benchmarks/recipe_comparison.py results/recipe-comparison
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${ZOO_DATA:-../shared/data}
COMMON=(--models unet --datasets isbi2012_em,dsb2018_nuclei,camvid --seeds 0,1 --budget "8 tflops")
zoo --data-dir "$DATA" bench "${COMMON[@]}" --plan auto --out results/recipe-comparison/planned
zoo --data-dir "$DATA" bench "${COMMON[@]}" --plan none --image-size 96 --eval-image-size upsampled \
    --out results/recipe-comparison/resize
# CamVid again at 30 TFLOPs (the planned-grid budget) and 135 TFLOPs (the default profile's): does the ordering at
# 8 TFLOPs hold with more compute?
for TF in 30 135; do
    C=(--models unet --datasets camvid --seeds 0,1 --budget "$TF tflops")
    zoo --data-dir "$DATA" bench "${C[@]}" --plan auto --out "results/recipe-comparison/planned-${TF}tflops"
    zoo --data-dir "$DATA" bench "${C[@]}" --plan none --image-size 96 --eval-image-size upsampled \
        --out "results/recipe-comparison/resize-${TF}tflops"
done
# CamVid at 30 TFLOPs once more with at least 250 optimizer steps (batch 2): are steps what the planned recipe lacked?
zoo --data-dir "$DATA" bench --config results/recipe-comparison/min-steps-250.toml --models unet --datasets camvid \
    --seeds 0,1 --budget "30 tflops" --plan auto --out results/recipe-comparison/planned-30tflops-250steps
