"""`migrator graph errors`: print the Graph/MM error classification table (data shipped in the package)."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import MigratorGroup, emit_json


@main.group(cls=MigratorGroup)
def graph() -> None:
    """The Graph API client's knowledge: error classes and what to do about each code."""


_CLASSES = ["retry_later", "recipient_later", "recipient_never", "stop_campaign", "fix_payload",
            "account_fatal"]


@graph.command("errors")
@click.option("--class", "only", type=click.Choice(_CLASSES), default=None, help="Only rows of this class.")
@click.option("--code", default=None, type=int, help="Classify one code (with --message for 2300069-79).")
@click.option("--subcode", default=None, type=int, help="error_subcode to classify with --code.")
@click.option("--message", default="", help="Error message text (decides 2300069-2300079).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def errors_cmd(only, code, subcode, message, as_json):
    """Show how every Graph / Marketing Messages error code is classed and how long to wait.

    \b
    Examples:
      migrator graph errors --class recipient_later
      migrator graph errors --code 2300078 --message "Send rate limit exceeded" --json
    """
    from migrator.graph.classify import classify, load_table, table_rows

    if code is not None:
        c = classify(code, subcode, message)
        if as_json:
            emit_json({"code": code, "error_subcode": subcode, **c.to_json()})
        else:
            wait = f", wait {c.wait_seconds:g}s" if c.wait_seconds else ""
            click.echo(f"{code}{'/' + str(subcode) if subcode is not None else ''}: {c.error_class.value}"
                       f"{wait} - {c.meaning} [{c.source}; matched {c.matched}"
                       f"{', reading ' + c.reading if c.reading else ''}]")
        return
    rows = [r for r in table_rows() if only is None or r["class"] == only]
    if as_json:
        emit_json({"version": load_table().version, "count": len(rows), "codes": rows})
        return
    for r in rows:
        wait = f"{r['wait_seconds']:g}s" if r["wait_seconds"] else "-"
        extra = f" [reading {r['reading']}: {', '.join(r['match']) or 'otherwise'}]" if r["reading"] else ""
        warm = " (warm-up)" if r["warmup"] else ""
        click.echo(f"{r['code']:<14} {r['class']:<16} {wait:>8}  {r['meaning']}{warm}{extra}  ({r['source']})")
