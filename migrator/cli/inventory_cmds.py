"""`migrator ingest ...`: load a partner's RN estate into the workspace."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import MigratorGroup


@main.group(cls=MigratorGroup)
def ingest() -> None:
    """Load tokens, pages, content or MM receipts into the workspace."""
