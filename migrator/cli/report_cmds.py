"""`migrator report audit|readiness|execution`: self-contained HTML reports (or their model as JSON)."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import MigratorGroup, emit_json, pass_app

_OUT = click.option("-o", "--out", "out", metavar="FILE",
                    help="Where to write (default reports/<report>.html in the current directory; "
                         "with --json: the model's JSON file, default stdout).")
_JSON = click.option("--json", "as_json", is_flag=True,
                     help="The report's model as one JSON object instead of HTML.")
_FORCE = click.option("--force", is_flag=True,
                      help="Replace an existing file migrator did not write (never the workspace).")


@main.group(cls=MigratorGroup)
def report():
    """Single-file HTML reports for partners, account managers and engineers.

    Each file is self-contained (inline CSS and SVG, no network), embeds its data as JSON
    and never shows a subscription token or PSID (short hashes only).

    \b
    Examples:
      migrator report audit
      migrator report readiness --page 949326690342998 -o acme.html
      migrator report execution --json
    """


def _run(app, kind: str, out, as_json: bool, force: bool = False, **kw) -> None:
    from migrator.report.produce import make_report

    ws = app.workspace(readonly=True)
    res = make_report(ws, kind, out=out, as_json=as_json, force=force, **kw)
    if as_json:
        if res.paths:
            emit_json({"report": kind, "written": [str(p) for p in res.paths]})
        else:
            emit_json(res.model.model_dump(mode="json"))
        return
    html, *extra = res.paths
    click.echo(f"wrote {html} ({html.stat().st_size / 1024:,.0f} KiB)")
    for p in extra:
        click.echo(f"wrote {p} (every row, for spreadsheets)")


@report.command("audit")
@_OUT
@_JSON
@_FORCE
@pass_app
def audit_report(app, out, as_json, force):
    """For partners: verdicts, findings, regions, content conversion and rule dates.

    \b
    Example:
      migrator audit --as-of 2026-01-15 && migrator report audit -o audit.html
    """
    _run(app, "audit", out, as_json, force)


@report.command("readiness")
@click.option("--page", "page", metavar="ID", help="Only this page (one business's file).")
@click.option("--per-page", "per_page", is_flag=True,
              help="One file per page (for that business only, named by page name and id) plus index.html, "
                   "in the directory -o DIR (default reports/readiness-pages).")
@_OUT
@_JSON
@_FORCE
@pass_app
def readiness_report(app, page, per_page, out, as_json, force):
    """For account managers: per page done / ready / needs action / blocked, who must act, cost.

    Writes a CSV of every page beside the HTML (large estates list the most urgent pages
    in the HTML). With --per-page, one file per business that shows that business only.

    \b
    Examples:
      migrator report readiness
      migrator report readiness --page 949326690342998 -o acme-outlet.html
      migrator report readiness --per-page -o to-send/
    """
    if per_page:
        if page:
            raise click.UsageError("--per-page writes every page; give either --per-page or --page")
        from migrator.report.per_page import write_per_page

        res = write_per_page(app.workspace(readonly=True), out or "reports/readiness-pages", force=force)
        if as_json:
            emit_json(res.to_json())
            return
        n = len(res.files)
        click.echo(f"wrote {n:,} business {'file' if n == 1 else 'files'} in {res.index.parent}/ "
                   f"and the index {res.index}")
        return
    _run(app, "readiness", out, as_json, force, page=page)


@report.command("execution")
@click.option("--plan", "plan", metavar="ID|FILE", help="Plan id or plan file (default: the latest plan).")
@_OUT
@_JSON
@_FORCE
@pass_app
def execution_report(app, plan, out, as_json, force):
    """For engineers: per plan, campaign and batch what was sent, errors, throughput, spend.

    \b
    Example:
      migrator report execution --plan plan.json -o run.html
    """
    _run(app, "execution", out, as_json, force, plan=plan)


@report.command("crm")
@click.option("-o", "--out", "out", metavar="DIR", default="reports", show_default=True,
              help="Directory for needs-country.csv and needs-opt-in.csv.")
@click.option("--page", "page", metavar="ID", help="Only this page.")
@_JSON
@_FORCE
@pass_app
def crm_report(app, out, page, as_json, force):
    """CSV files for the CRM team: subscriptions that need a country, and those that need a new opt-in.

    Rows carry short hashes (token_hash, and psid_hash = first 12 hex of SHA-256 of the PSID, so the
    CRM can match its own records); never a token or PSID.

    \b
    Example:
      migrator report crm -o to-crm/
    """
    from migrator.report.crm import write_crm_exports

    res = write_crm_exports(app.workspace(readonly=True), out, page=page, force=force)
    if as_json:
        emit_json(res.to_json())
        return
    for path, n, what in ((res.needs_country, res.needs_country_rows, "need a country"),
                          (res.needs_opt_in, res.needs_opt_in_rows, "need a new opt-in")):
        click.echo(f"wrote {path}: {n:,} {'subscription' if n == 1 else 'subscriptions'} {what}")
