"""`migrator rules show`: the rules in force and where each value comes from."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import MigratorGroup, emit_json
from migrator.inputs import encoding_option

RULES_OPTION = click.option(
    "--rules", "rules_path", metavar="FILE", type=click.Path(dir_okay=False),
    help="Override file (TOML, any subset of entries) applied on top of the packaged rules.")


@main.group(cls=MigratorGroup)
def rules() -> None:
    """Rules as data: dates, geo lists, cadences, limits and interpretation options."""


@rules.command("show")
@RULES_OPTION
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def rules_show(rules_path, encoding, as_json):
    """Print every rule in force with its value, source URL(s), verified date, origin and users.

    Every limit the converter, planner, executor and emulator use is listed here; `used by`
    names which of them read it (an entry no part reads is marked recorded only).

    \b
    Examples:
      migrator rules show
      migrator rules show --rules my-rules.toml --json
    """
    from migrator.rules import load_rules

    r = load_rules(rules_path, encoding=encoding)
    if as_json:
        emit_json(r.to_json())
        return
    click.echo(f"rules version {r.version}  fingerprint {r.fingerprint()[:16]}")
    click.echo(f"from: {', '.join(r.origins())}")
    for name, e in r.to_json()["rules"].items():
        v = e["value"]
        shown = ", ".join(map(str, v)) if isinstance(v, list) else str(v)
        origin = "" if e["origin"] == "package" else f"  [override: {e['origin']}]"
        click.echo(f"\n{name} = {shown}{origin}")
        if e["note"]:
            click.echo(f"  {e['note']}")
        click.echo(f"  used by: {', '.join(e['used_by'])}" if e["used_by"] else "  used by: (recorded only)")
        click.echo(f"  verified {e['verified']}:")
        for s in e["sources"]:
            click.echo(f"    {s}")
