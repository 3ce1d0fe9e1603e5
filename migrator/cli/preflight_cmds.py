"""`migrator preflight`: read-only checks of every page and ad account a plan uses, before any send."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import emit_json, pass_app
from migrator.cli.rules_cmds import RULES_OPTION
from migrator.inputs import encoding_option

_MARK = {"pass": "ok  ", "fail": "FAIL", "unknown": "?   "}


@main.command("preflight")
@click.argument("plan_path", metavar="PLAN.json|SPEC.toml", type=click.Path(dir_okay=False))
@click.option("--base-url", metavar="URL", help="Graph API base URL (e.g. an emulator: http://127.0.0.1:8765).")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="File holding the access token the executor will use (else MIGRATOR_ACCESS_TOKEN).")
@click.option("--page-tokens", "page_tokens", type=click.Path(dir_okay=False), metavar="FILE",
              help="Page -> token map to check (page_id<TAB>token lines, mode 0600), as `pull tokens` reads it.")
@RULES_OPTION
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every check.")
@pass_app
def preflight_cmd(app, plan_path, base_url, token_file, page_tokens, rules_path, encoding, as_json):
    """Check, before the first billed send, that every page and ad account of a plan can send.

    Read-only Graph calls: the token's permissions, each ad account's status, currency, time zone
    (against the budget day the plan counts), payment method and business country, each page's
    business (the same as its ad account's), country and Page token. Each check is pass / fail /
    unknown with what to do and who does it; what Meta shows only when a send is refused (terms of
    service, campaign warm-up) is said as such. Exit 0 when nothing fails, 1 when a check fails.

    \b
    Examples:
      migrator preflight plan.json
      migrator preflight plans/sample.toml --json
      migrator preflight plan.json --base-url http://127.0.0.1:8765 --page-tokens pages.tokens
    """
    from migrator.preflight import preflight

    report = preflight(app.workspace(), plan_path, token_file=token_file, base_url=base_url,
                       page_tokens_path=page_tokens, rules_path=rules_path, encoding=encoding)
    if as_json:
        emit_json(report.to_json())
    else:
        _print(report)
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)


def _print(report) -> None:
    c = report.counts
    click.echo(f"Preflight of {report.source} {report.plan_id or ''} against {report.base_url}".replace("  ", " "))
    if report.unreachable:
        click.echo(f"error: Graph could not be reached ({report.unreachable}): nothing was checked. Check "
                   "--base-url and the network, then run preflight again.", err=True)
        return
    for r in report.checks:
        d = r.to_json()
        where = "token" if r.scope == "token" else (f"act_{r.subject}" if r.scope == "ad_account" else
                                                   f"page {r.subject}")
        click.echo(f"  {_MARK[r.status]} {d['title']:<36} {where:<24} {r.detail}")
        if r.status == "fail" or (r.status == "unknown" and r.readable):
            click.echo(f"       -> {d['who']}: {d['action']}")
    seen = set()
    for r in report.checks:
        if r.readable or r.check in seen:
            continue
        seen.add(r.check)
        d = r.to_json()
        click.echo(f"  not read - {d['title']} ({d['who']}): {d['action']}")
    click.echo("")
    states = {}
    for p in report.pages:
        states.setdefault(p["state"], []).append(p["page_id"])
    click.echo(f"{c['pass']} passed, {c['fail']} failed, {c['unknown']} unknown; pages: "
               + ", ".join(f"{len(v)} {k}" for k, v in sorted(states.items())))
    for p in report.pages:
        if p["state"] == "fail":
            click.echo(f"  page {p['page_id']} ({p['name'] or '?'}): cannot send yet: {', '.join(p['failed'])}")
    if not report.ok:
        click.echo("Fix the failed checks (who does what is shown above), then run preflight again.")
