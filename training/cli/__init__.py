"""The `rnagan` command line: the entry point (training.cli.rnagan), presets and one module per command.

`main` is importable from here too: console scripts installed before the move call `training.cli:main`.
"""

from training.cli.rnagan import main

__all__ = ["main"]
