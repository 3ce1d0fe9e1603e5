"""Shared pieces of the click layer: the app context, JSON output, progress, error handling.

The CLI stays thin: each command parses options, calls one library function and prints
its result (text for people, exactly one JSON object with --json).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import click

from migrator.errors import MigratorError
from migrator.store import disk_error, disk_failed


@dataclass
class AppContext:
    """What every command may need: the workspace location and output preferences."""

    db_path: str | None = None
    quiet: bool = False
    _ws: Any = field(default=None, repr=False)

    def workspace(self, *, create: bool = True, readonly: bool = False):
        """Open the workspace once per command invocation (closed when the command ends).

        `readonly` commands (status, report) never create it nor run schema migrations."""
        if self._ws is None:
            from migrator.store import open_workspace

            self._ws = open_workspace(self.db_path, create=create and not readonly, readonly=readonly)
            ctx = click.get_current_context(silent=True)
            if ctx is not None:
                ctx.find_root().call_on_close(self._close)
        return self._ws

    def _close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def show_progress(self) -> bool:
        """Progress bars only for a person watching a terminal."""
        return not self.quiet and sys.stderr.isatty()


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def emit_json(data: Any) -> None:
    """Print exactly one JSON object on stdout (a string that is not valid Unicode, e.g. a
    lone surrogate, is printed \\u-escaped rather than failing the whole output)."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=False, default=_json_default)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, ensure_ascii=True, sort_keys=False, default=_json_default)
    click.echo(text)


def _json_default(o: Any):
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def info(app: AppContext, message: str) -> None:
    """A log line for people: stderr, silenced by --quiet."""
    if not app.quiet:
        click.echo(message, err=True)


def progress(app: AppContext, iterable: Iterable | None = None, *, total: int | None = None,
             desc: str = "", unit: str = "it"):
    """A tqdm bar on stderr that disappears when stderr is not a terminal or with --quiet."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr,
                disable=not app.show_progress(), unit_scale=True, leave=False)


def parse_as_of(ctx, param, value):
    """click callback for --as-of: YYYY-MM-DD, or a usage error (exit 2) that says so."""
    if value is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-01-15") from None


def print_ingest_summary(summary, as_json: bool) -> None:
    """What every ingest-like command prints: per file counts, the first rejects and warnings.

    Exit code: 1 when a file gave nothing (no record accepted or found again) but had
    rejects, with the count and the first reasons on stderr; partial success is 0.
    """
    if as_json:
        emit_json(summary.to_json())
    else:
        for f in summary.files:
            click.echo(f"{f.path} ({f.format}): {f.records} records: {f.accepted} accepted, "
                       f"{f.duplicates} duplicate, {f.ignored} ignored, {f.rejected} rejected"
                       + (f"; {f.warnings} field warning{'s' if f.warnings != 1 else ''} (records kept without "
                          "those fields)" if f.warnings else ""))
            for r in f.first_rejects[:5]:
                click.echo(f"  line {r['line']}: {r['reason']}")
            if f.rejected > 5:
                click.echo(f"  ... {f.rejected - 5} more (SELECT * FROM rejects WHERE run_id = {f.run_id}"
                           " AND severity = 'reject')")
            for r in f.first_warnings[:3]:
                click.echo(f"  warning, line {r['line']}: {r['reason']}")
            if f.warnings > 3:
                click.echo(f"  ... {f.warnings - 3} more warnings (SELECT * FROM rejects WHERE run_id = "
                           f"{f.run_id} AND severity = 'warning')")
        if len(summary.files) > 1:
            click.echo(f"total: {summary.accepted} accepted, {summary.duplicates} duplicate, "
                       f"{summary.ignored} ignored, {summary.rejected} rejected")
    refused = summary.refused_files()
    if refused:
        for f in refused:
            first = "; ".join(f"line {r['line']}: {r['reason']}" for r in f.first_rejects[:3])
            click.secho(f"error: nothing accepted from {f.path}: {f.rejected} record"
                        f"{'' if f.rejected == 1 else 's'} rejected ({first})", err=True, fg="red")
        click.echo("hint: fix the file (the rejects table has every reason), or pass --encoding / "
                   "--delimiter / --format if it was read the wrong way", err=True)
        raise click.exceptions.Exit(1)


def delimiter_option(fn):
    """`--delimiter C` for CSV inputs: , ; | or tab (\\t); default: detected from the header."""

    def _check(ctx, param, value):
        if value is None:
            return None
        v = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(value.lower(), value)
        if len(v) != 1 or v in '"\r\n' or v.isalnum():
            raise click.BadParameter(f"{value!r} is not a delimiter (use , ; | or tab)")
        return v

    return click.option("--delimiter", "delimiter", metavar="C", callback=_check, default=None,
                        help="CSV delimiter: , ; | or tab [default: detected from the header line]")(fn)


def report_error(err: MigratorError) -> None:
    click.secho(f"error: {err.message}", err=True, fg="red")
    if err.hint:
        click.echo(f"hint: {err.hint}", err=True)


EXIT_INTERRUPTED = 130  # SIGINT, as PRODUCT.md's contract says (128 + 2)


class MigratorGroup(click.Group):
    """A click group that turns MigratorError into a clear message and exit code 1, and a
    Ctrl-C into exit code 130 (click's own "Aborted!" exits 1: "ran but refused or failed")."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MigratorError as err:
            report_error(err)
            ctx.exit(err.exit_code)
        except sqlite3.OperationalError as err:
            if not disk_failed(err):
                raise
            # the disk failing mid-statement (full, I/O error): the transaction rolled back
            error = disk_error(err)
            report_error(error)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: what was committed before stays; the step under way was rolled "
                       "back (an ingest keeps nothing of the file it was reading). Run the command "
                       "again to go on.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
