"""The ``nasfcn`` command line: thin commands that parse, call the library and render.

One module per command group; ``_options`` holds what several commands share. Errors
nasfcn raises on purpose (``NasfcnError``) are refused in one place, the root group:
one line on stderr, database URLs masked, exit code 2. Commands catch only what needs
another code (1 when the machine stopped a run, 130 for Ctrl-C) or is not a NasfcnError.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from nasfcn import __version__
from nasfcn.cli._arena import arena
from nasfcn.cli._benchmark import benchmark_app
from nasfcn.cli._bundle import export, finetune, predict
from nasfcn.cli._console import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, console, err_console, fail
from nasfcn.cli._db import db_app, trials
from nasfcn.cli._leaderboard import leaderboard, serve
from nasfcn.cli._proxies import proxies_app
from nasfcn.cli._search import SearchCommand, search
from nasfcn.cli._spaces import spaces_app
from nasfcn.cli._tabulate import tabulate_app
from nasfcn.cli._train import train
from nasfcn.errors import NasfcnError

__all__ = ["EXIT_BAD_INPUT", "EXIT_ENVIRONMENT", "app", "console", "err_console", "main"]


class _RefusingGroup(TyperGroup):
    """The root command: any NasfcnError a command lets through is one masked line, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NasfcnError as err:
            from nasfcn.store import mask_text

            raise fail(mask_text(str(err))) from None


app = typer.Typer(
    name="nasfcn",
    cls=_RefusingGroup,
    help="Architecture search and benchmarking for fully convolutional segmentation networks.\n\n"
    "A first journey: nasfcn search --space search_spaces/fcn_tiny.yaml --data folder:my_data --name first; "
    "nasfcn leaderboard --search first; nasfcn export --search first --out first_bundle; "
    "nasfcn finetune --bundle first_bundle --data folder:more_data --out my_model. "
    "Every command's --help has examples.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(spaces_app, name="spaces")
app.add_typer(db_app, name="db")
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(tabulate_app, name="tabulate")
app.add_typer(proxies_app, name="proxies")
app.command("train")(train)
app.command("search", cls=SearchCommand)(search)
app.command("trials")(trials)
app.command("leaderboard")(leaderboard)
app.command("serve")(serve)
app.command("export")(export)
app.command("predict")(predict)
app.command("finetune")(finetune)
app.command("arena")(arena)


def _version(value: bool) -> None:
    if value:
        console.print(f"nasfcn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Architecture search and benchmarking for fully convolutional segmentation networks."""


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """nasfcn's own warnings (e.g. a bundle without a manifest) as one line on stderr."""
    if category.__module__.split(".")[0] == "nasfcn":
        err_console.print(f"warning: {message}", markup=False, highlight=False)
    else:
        _python_show_warning(message, category, *args, **kwargs)


_python_show_warning = warnings.showwarning


def main() -> None:
    """The ``nasfcn`` entry point: nasfcn's warnings as one line each, then the command."""
    warnings.showwarning = _show_warning
    app()
