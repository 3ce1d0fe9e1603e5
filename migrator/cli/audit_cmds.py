"""`migrator audit`: the dry-run audit of the whole estate, as of a date."""

from __future__ import annotations


import click

from migrator.cli import main
from migrator.cli.common import emit_json, parse_as_of, pass_app
from migrator.cli.rules_cmds import RULES_OPTION
from migrator.inputs import encoding_option

_TOP = 8



@main.command()
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", callback=parse_as_of,
              help="Judge the estate as of this date (UTC). Default: today.")
@RULES_OPTION
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@pass_app
def audit(app, as_of, rules_path, encoding, as_json):
    """What happens to every subscriber, page and piece of content (never calls the network).

    Verdicts per token: migrate, stay_on_rn, blocked, opted_out, review. Results are
    stored in the workspace (audit_tokens, audit_pages, audit_contents; views
    v_audit_migrate, v_audit_token_findings, v_audit_page_findings).

    \b
    Examples:
      migrator audit
      migrator audit --as-of 2026-01-15 --json
      migrator audit --rules my-rules.toml
    """
    from migrator.audit import run_audit
    from migrator.rules import load_rules

    rules = load_rules(rules_path, encoding=encoding)
    ws = app.workspace(create=False)  # auditing nothing is a mistake, not an empty estate
    result = run_audit(ws, as_of=as_of, rules=rules)
    if as_json:
        emit_json(result.to_json())
        return
    _print_summary(result)


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:5.1f}%" if total else "    -"


def _print_summary(r) -> None:
    o = r.options
    click.echo(f"Audit as of {r.as_of.isoformat()}  (rules {r.rules_version}; RN exemption by "
               f"{o['rn_exemption_basis']} geo; EU = {o['eu_definition']}; "
               f"MM cadence {o['mm_cadence_hours']} h)")
    click.echo(f"{r.tokens:,} tokens, {r.recipients:,} recipients")
    labels = {"migrate": "migrate", "stay_on_rn": "stay on RN", "blocked": "blocked",
              "opted_out": "opted out", "review": "review"}
    for v, label in labels.items():
        n = r.verdicts[v]
        click.echo(f"  {label:<11}{n:>12,}  {_pct(n, r.tokens)}")
    if r.countdown_days is not None:
        click.echo(f"RN stops outside {'/'.join(r.rn_exempt_geos)} on "
                   f"{r.rn_discontinuation.isoformat()}: {r.countdown_days} day(s) left.")
    inferred = r.region_sources.get("timezone", 0)
    if inferred:
        click.echo(f"Note: {inferred:,} regions are inferred from time zones (inferences, not facts).")
    p, c = r.pages, r.contents
    click.echo(f"Pages: {p['ready']:,} ready, {p['needs_action']:,} need action, "
               f"{p['blocked']:,} blocked")
    click.echo(f"Content: {c['exact']:,} exact, {c['lossy']:,} lossy, {c['needs_edit']:,} need edits, "
               f"{c['unsupported']:,} unsupported, {c['not_converted']:,} not converted yet")
    rank = {"error": 0, "warning": 1, "info": 2}
    shown = sorted((f for f in r.catalogue if r.findings.get(f["code"])),
                   key=lambda f: (rank[f["severity"]], -r.findings[f["code"]]))
    if shown:
        click.echo("Findings:")
        for f in shown[:_TOP]:
            click.echo(f"  {f['severity']:<7} {f['code']:<30}{r.findings[f['code']]:>10,} {f['scope']}s"
                       f"  -> {f['remedy']}")
        if len(shown) > _TOP:
            click.echo(f"  ... {len(shown) - _TOP} more: SELECT * FROM audit_run_findings "
                       f"WHERE run_id = {r.run_id} AND count > 0")
    click.echo("Details: SELECT * FROM v_audit_token_findings; pages: SELECT * FROM audit_pages")
