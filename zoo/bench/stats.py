"""Bootstrap intervals of a leaderboard's scores (definitions in the README; verdicts: ``zoo.bench.verdicts``).

- ``bootstrap_ci``: a 95% percentile bootstrap interval over test images and seeds: each of ``n_boot``
  replicates resamples the seeds and (independently) the test images with replacement and takes the mean over
  resampled seeds of the NaN-mean over resampled images. The generator is seeded from names
  (:func:`seeded_rng`), so the interval is reproducible.
"""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np

__all__ = ["N_BOOT", "seeded_rng", "bootstrap_ci"]

N_BOOT = 1000


def seeded_rng(*key: str) -> np.random.Generator:
    """A generator seeded from names (dataset, variant, column), so every statistic is reproducible."""
    return np.random.default_rng([0, zlib.crc32("\x1f".join(key).encode())])


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, *, n_boot: int = N_BOOT,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of the seed-mean of per-image NaN-means, resampling seeds and images.

    Args:
        values: ``(seeds, images)``; NaN where a value is undefined.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0 or np.isnan(values).all():
        return math.nan, math.nan
    n_seeds, n_images = values.shape
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))
    images = rng.integers(0, n_images, (n_boot, n_images))
    samples = values[seeds[:, :, None], images[:, None, :]]  # (n_boot, seeds, images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" for all-NaN resamples
        stats = np.nanmean(np.nanmean(samples, axis=2), axis=1)
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)
