"""The dlspec command line: a thin layer over the Python API.

Results go to stdout, diagnostics and progress to stderr. Exit codes: 0 ok,
1 invalid input of any kind, 2 command-line usage, 3 training diverged,
130 interrupted.
"""
# isort: skip_file  (commands appear in --help in the order their modules register them)

from dlspec.cli.app import app, main  # noqa: I001
from dlspec.cli import spec_commands  # noqa: F401
from dlspec.cli import model_commands  # noqa: F401
from dlspec.cli import report_commands  # noqa: F401
from dlspec.cli import run_commands  # noqa: F401

__all__ = ["app", "main"]
