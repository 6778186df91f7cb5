"""CI runs exactly the README's install and test commands (so the README cannot drift from what is tested)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_ci_runs_the_readme_install_and_test_command():
    bench, test = _readme_commands()
    ci = [line.strip() for line in ROOT.joinpath(".ci", "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd ", "if "))]  # if: the browser's system packages
    assert " && ".join(ci) == test  # venv, activate, install, pytest: the same commands in the same order
    assert bench.split(" && ")[:3] == test.split(" && ")[:3]  # both commands install the same way


def test_the_install_command_adds_the_extras_and_the_example_package():
    _, test = _readme_commands()
    install = test.split(" && ")[2]
    assert install == "pip install -e '.[dev,smp,monai,onnx,ray]' -e examples/zoo-plugin-example"
