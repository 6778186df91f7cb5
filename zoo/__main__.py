"""``python -m zoo`` (used by torchrun and by benchmark cell subprocesses)."""

import sys

from zoo.cli import main

sys.exit(main())
