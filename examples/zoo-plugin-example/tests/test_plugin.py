"""The zoo contract kit on every spec this package registers (no install needed: the hooks are called)."""

import zoo_example.plugin
from zoo.testing import parametrize_with_checks


@parametrize_with_checks(zoo_example.plugin)
def test_zoo_contract(plugin, check):
    check(plugin)
