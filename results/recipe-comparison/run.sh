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
