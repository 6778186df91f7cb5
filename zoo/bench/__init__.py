"""The benchmark harness, one module per concept (``zoo.api.bench`` and ``zoo.api.leaderboard`` front it).

- ``grid``: budget profiles, plans and their expansion into cells; ``plan_config``: the TOML config file and
  the plan's list values (seeds, axes)
- ``cell``: one cell in its own process (the child trains and measures; the parent watches and records)
- ``records``: the typed, versioned cell record and the cell folder layout; ``locks``: per-cell locks
- ``runner``: running a grid (shards, devices, resume); ``tables``: ``runs.csv`` and ``per_image.csv``
- ``leaderboard``: per-dataset and overall tables; ``stats``: bootstrap intervals
- ``verdicts``: recipe verdicts, model comparisons, Holm; ``ranking``: all pairs, rank stability, separation,
  floor flags, seed advice, simulations; ``floors``: trivial predictors on the test masks (``floors.csv``);
  ``analysis``: all of them computed once for a leaderboard
- ``markdown``, ``plots``, ``verdict_plots``: rendering; ``summary``: a results page's generated prose;
  ``report``: everything re-rendered from records (``zoo leaderboard``)
"""
