"""`migrator plan`: spec + workspace -> a saved, costed plan (like `terraform plan`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from migrator.cli import main
from migrator.cli.common import emit_json, info, parse_as_of, pass_app
from migrator.cli.rules_cmds import RULES_OPTION
from migrator.inputs import encoding_option
from migrator.money import figure, format_money
from migrator.words import plural


def _money(n: int | None, currency: str) -> str:
    return format_money(n, currency, none="unbounded")


def _when(t: int | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@main.command("plan")
@click.argument("spec_path", metavar="SPEC.toml", required=False, type=click.Path(dir_okay=False))
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", callback=parse_as_of,
              help="Plan as of this date (UTC). Default: today.")
@click.option("-o", "--output", "out", metavar="PLAN.json", type=click.Path(dir_okay=False),
              help="Write the saved plan here (execute reads it).")
@RULES_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the plan's figures.")
@click.option("--schema", is_flag=True, help="Print the JSON Schema of the spec and exit.")
@click.option("--base-url", default=None, metavar="URL",
              help="Graph host for cost.source = \"estimate\" (token from MIGRATOR_ACCESS_TOKEN).")
@click.option("--force", is_flag=True,
              help="Replace an existing -o file migrator did not write (never the spec or the workspace).")
@encoding_option
@pass_app
def plan_cmd(app, spec_path, as_of, out, rules_path, as_json, schema, base_url, force, encoding):
    """Turn a plan spec and the audited workspace into a saved plan: campaigns, messages,
    one send per subscriber in batches inside each subscriber's local send window, and the
    cost against each campaign's budget. Nothing is sent; `migrator execute` runs the plan.

    \b
    Examples:
      migrator plan plans/sample.toml -o plan.json
      migrator plan plans/sample.toml --as-of 2026-01-15 --json
      migrator plan --schema > plan-spec.schema.json
    """
    from migrator.graph import DEFAULT_BASE_URL
    from migrator.plan import make_plan, spec_schema

    if schema:
        emit_json(spec_schema())
        return
    if not spec_path:
        raise click.UsageError("give a plan spec (SPEC.toml), or --schema")
    plan = make_plan(app.workspace(), spec_path, as_of=as_of, rules_path=rules_path, out=out,
                     estimate_base_url=base_url or DEFAULT_BASE_URL, notify=lambda m: info(app, m),
                     encoding=encoding, force=force)
    if as_json:
        # amounts stay in minor units (the contract); "money" adds the same figures as every surface shows them
        emit_json({**plan.summary_json(), "money": {
            "estimated_cost": [figure(n, cur, "estimated") for cur, n in plan.estimated_cost.items()],
            "budget": [figure(n, cur, "budget") for cur, n in plan.budget.items() if n is not None]}})
        return
    _print_plan(plan, out)


def _print_plan(plan, out) -> None:
    click.echo(f"Plan {plan.plan_id} \"{plan.name}\" as of {plan.as_of} (rules {plan.rules_version})")
    click.echo(f"fingerprint {plan.fingerprint}")
    click.echo("")
    if plan.campaigns:
        click.echo("MM campaigns to create:")
    for c in plan.campaigns:
        budget = (f"lifetime budget {_money(c.lifetime_budget, c.currency)}" if c.lifetime_budget is not None else
                  f"daily budget {_money(c.daily_budget, c.currency)}" if c.daily_budget is not None
                  else "no budget")
        click.echo(f"  + {c.key}  {c.name!r}  page {c.page_id}  act_{c.ad_account_id}  {budget}")
        click.echo(f"      {plural(c.sends, 'send')} x {_money(c.cost_per_message, c.currency)}"
                   f" = {_money(c.estimated_cost, c.currency)} estimated"
                   f" vs budget {_money(c.budget_total, c.currency)}"
                   + (f"; {plural(c.unreachable_by_budget, 'subscriber')} the budget cannot reach"
                      if c.unreachable_by_budget else ""))
        click.echo(f"      sends {_when(c.first_send_at)} .. {_when(c.last_send_at)}; messages "
                   + ", ".join(c.messages))
    if plan.messages:
        click.echo("Messages:")
    for m in plan.messages:
        origin = f"content {m.content_id}" if m.content_id is not None else "spec"
        text = json.dumps(m.message, ensure_ascii=False)
        click.echo(f"  + {m.key} ({m.campaign_key}, {m.source} from {origin}"
                   + (f", {m.outcome}" if m.outcome else "") + f"): {plural(m.sends, 'send')}  "
                   + (text if len(text) <= 70 else text[:67] + "..."))
    click.echo("")
    click.echo(f"{plural(plan.sends, 'send')} in {plural(len(plan.batches), 'batch')}"
               + (f", {plan.batches[0].day} .. {plan.batches[-1].day}" if plan.batches else ""))
    for cur, cost in plan.estimated_cost.items():
        click.echo(f"cost {_money(cost, cur)} estimated vs budget {_money(plan.budget.get(cur), cur)}")
    if plan.unreachable_by_budget:
        click.echo(f"{plural(plan.unreachable_by_budget, 'subscriber')} cannot be reached within budget "
                   "(SELECT * FROM v_plan_excluded WHERE reason = 'over_budget')")
    if plan.excluded:
        click.echo("Not planned:")
        for reason, n in plan.excluded.items():
            click.echo(f"  - {reason:<24}{n:>10,}")
    if plan.zero_send_reason:
        click.echo(f"No sends: {plan.zero_send_reason}")
    for w in plan.warnings:
        click.echo(f"warning: {w}")
    click.echo("")
    if out:
        click.echo(f"Saved to {out}. Run: migrator execute {out}  (a dry run; add --execute to send)")
    else:
        click.echo("Stored in the workspace only; pass -o PLAN.json to save a plan file for execute.")
