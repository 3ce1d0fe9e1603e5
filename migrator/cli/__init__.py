"""The `migrator` command: a thin click layer over the library.

Global options apply to every command: --db (env MIGRATOR_DB, default ./migration.db),
--quiet. Exit codes: 0 done, 1 refused or failed, 2 usage error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import click

from migrator import __version__
from migrator.cli.common import AppContext, MigratorGroup


@click.group(cls=MigratorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="migrator")
@click.option("--db", "db_path", metavar="PATH", envvar="MIGRATOR_DB",
              help="Workspace file (env MIGRATOR_DB, default ./migration.db).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or log lines on stderr.")
@click.pass_context
def main(ctx: click.Context, db_path: str | None, quiet: bool) -> None:
    """Move a Messenger Recurring Notifications estate onto the Marketing Message API.

    \b
    Start here:
      migrator demo                      # the whole path on a bundled sample estate
      migrator ingest tokens tokens.csv  # your own estate
      migrator audit                     # what happens to every subscriber
    """
    ctx.obj = AppContext(db_path=db_path, quiet=quiet)


# Each concern adds its commands to `main` (import order = help order).
from migrator.cli import inventory_cmds  # noqa: E402,F401
from migrator.cli import rules_cmds, audit_cmds  # noqa: E402,F401
from migrator.cli import convert_cmds  # noqa: E402,F401
from migrator.cli import emulator_cmds, graph_cmds, pull_cmds  # noqa: E402,F401
from migrator.cli import sample_cmds  # noqa: E402,F401
from migrator.cli import plan_cmds  # noqa: E402,F401
from migrator.cli import report_cmds  # noqa: E402,F401
from migrator.cli import preflight_cmds  # noqa: E402,F401
from migrator.cli import execute_cmds  # noqa: E402,F401
from migrator.cli import demo_cmds  # noqa: E402,F401
