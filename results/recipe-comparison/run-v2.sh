#!/usr/bin/env bash
# CamVid again with plan v2 (a starving compute budget shrinks images whose major classes are large and thick):
# the planned recipe against the committed resize cells at 8 and 30 TFLOPs, then 135 TFLOPs for both recipes.
# Resumable: rerun to continue. Tables: python benchmarks/recipe_comparison.py results/recipe-comparison
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${ZOO_DATA:-../shared/data}
OUT=${ZOO_RESULTS:-results}/recipe-comparison
C=(--models unet --datasets camvid --seeds 0,1)
zoo --data-dir "$DATA" bench "${C[@]}" --budget "8 tflops" --plan auto --out "$OUT/planned-v2"
zoo --data-dir "$DATA" bench --config results/recipe-comparison/min-steps-250.toml "${C[@]}" --budget "30 tflops" \
    --plan auto --out "$OUT/planned-v2-30tflops"
zoo --data-dir "$DATA" bench "${C[@]}" --budget "135 tflops" --plan auto --out "$OUT/planned-v2-135tflops"
zoo --data-dir "$DATA" bench "${C[@]}" --budget "135 tflops" --plan none --image-size 96 --eval-image-size upsampled \
    --out "$OUT/resize-135tflops"
