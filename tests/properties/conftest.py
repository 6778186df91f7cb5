"""Hypothesis settings for the property-based suite, and the count of generated cases per input surface.

Profiles (``ZOO_HYPOTHESIS_PROFILE``): ``ci`` (the default: modest example counts, so the suite stays within its
time budget on two shared cores) and ``deep`` (ten times as many, for a longer local search). Both are
derandomized, so a run is reproducible and a failure is the same failure on the next run, and keep no example
database in the working tree.

Each property counts the inputs it passed (:func:`counted`); the counts are printed at the end of the test
session, one line per surface, and are what the README's reliability section quotes.
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, derandomize=True, database=None, print_blob=True,
               suppress_health_check=(HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much))
settings.register_profile("ci", max_examples=60, **_COMMON)
settings.register_profile("deep", max_examples=600, **_COMMON)
settings.load_profile(os.environ.get("ZOO_HYPOTHESIS_PROFILE", "ci"))

CASES: collections.Counter[str] = collections.Counter()


def counted(surface: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Count every generated input the decorated property passed under ``surface`` (apply below ``@given``).

    Inputs that Hypothesis discards (``assume``) or that fail are not counted: the number is what passed.
    """
    def decorate(test: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            result = test(*args, **kwargs)
            CASES[surface] += 1
            return result
        return run
    return decorate


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES:
        return
    profile = os.environ.get("ZOO_HYPOTHESIS_PROFILE", "ci")
    terminalreporter.section(f"property-based inputs passed (hypothesis profile {profile!r})")
    for surface, count in sorted(CASES.items()):
        terminalreporter.write_line(f"{surface:<50} {count:>6} cases")
    terminalreporter.write_line(f"{'total':<50} {sum(CASES.values()):>6} cases")
