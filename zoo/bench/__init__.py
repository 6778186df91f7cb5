"""The benchmark harness's parts: grid expansion, cell runner, records, leaderboard statistics and plots.

``zoo.benchmark`` is the public face (``run_benchmark``, ``BenchmarkRow``, ``write_leaderboard``); these
modules are its internals.
"""
