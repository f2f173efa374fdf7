"""The Typer app, its shared options, and how errors become messages and exit codes.

Results go to stdout, diagnostics and progress to stderr. Exit codes: 0 ok,
1 invalid input of any kind, 2 command-line usage, 3 training diverged,
130 interrupted.
"""

from __future__ import annotations

import contextlib
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, ConsoleDimensions
from typer.core import TyperGroup

from dlspec.errors import Diagnostic, Diagnostics, DlspecError, TrainingInterrupted
from dlspec.version import __version__


class _Commands(TyperGroup):
    """The top-level group: ``--debug`` is taken after the command's name as well as before
    it (``dlspec train SPEC --debug`` is ``dlspec --debug train SPEC``), up to a ``--``."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[1:end]:
            args = ["--debug", *(a for a in args[:end] if a != "--debug"), *args[end:]]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Declarative model specs: validate, inspect, train, export, predict.")
UNWRAPPED = 1 << 16  # columns of a console that writes to a file or a pipe


class _Console(Console):
    """Rich's console, except that without a terminal (CI logs, pipes, ``| less``) it
    wraps nothing: Rich would wrap at 80 columns, putting a caret on a line of its own
    and cutting tables mid-word. Tables take their natural width there."""

    @property
    def size(self) -> ConsoleDimensions:
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(UNWRAPPED, super().size.height)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


# No markup unless a call asks for it: names and values from users' files (a class
# '[/x]', a column '[bold]') are printed as they are, never parsed as Rich markup.
err = _Console(stderr=True, highlight=False, markup=False)
out = _Console(highlight=False, markup=False)
_state = {"debug": False}

Overrides = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY.PATH=VALUE", help="Override a spec field (repeatable), e.g. "
    "--set train.epochs=5")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or tables.")]
MaxMemory = Annotated[str, typer.Option("--max-memory", metavar="SIZE", help="Refuse specs "
                                        "whose training step needs more (e.g. 8GiB, 512MB).")]


def size_option(text: str) -> int:
    from dlspec.graph.resources import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--max-memory") from None


class Format(str, Enum):
    text = "text"
    json = "json"
    github = "github"


class Backend(str, Enum):
    onnxruntime = "onnxruntime"
    numpy = "numpy"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


class OnUnknown(str, Enum):
    error = "error"
    zeros = "zeros"


class OnMissing(str, Enum):
    error = "error"
    impute = "impute"


class InputFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"
    npy = "npy"
    npz = "npz"
    parquet = "parquet"


ModelArg = Annotated[Path, typer.Argument(help="An .onnx model or a run directory.")]
DeviceOpt = Annotated[Device, typer.Option(help="cpu, cuda or auto.")]


def _report(e: DlspecError) -> int:
    from rich.markup import escape

    from dlspec.render import diagnostics_text, printable

    if isinstance(e, TrainingInterrupted):
        err.print(printable(str(e)), markup=False, soft_wrap=True)
    elif isinstance(e, Diagnostics):
        diagnostics_text(err, e.items)
    elif isinstance(e, Diagnostic):
        diagnostics_text(err, [e])
    else:
        err.print(f"[red]error[/]: {escape(printable(str(e)))}", markup=True, soft_wrap=True)
    return e.exit_code


@contextlib.contextmanager
def user_errors():
    """Map dlspec's errors to messages and exit codes; anything else is a bug."""
    try:
        yield
    except DlspecError as e:
        raise typer.Exit(_report(e)) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.BadParameter):
        raise
    except OSError as e:  # the file system refused (permissions, a full disk): not a bug
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"{where}{e.strerror or e}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except Exception as e:  # noqa: BLE001 - the one place that catches everything
        if _state["debug"]:
            traceback.print_exc()
        err.print(f"internal error: {type(e).__name__}: {e}\nThis is a bug in dlspec "
                  f"{__version__}; please report it (add --debug to the command for the "
                  "traceback).",
                  markup=False, soft_wrap=True)
        raise typer.Exit(70) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"dlspec {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal "
                                        "errors (also taken after the command).")] = False,
) -> None:
    _state["debug"] = debug


def main() -> None:
    app()
