"""`migrator demo`: the whole path on the bundled sample estate, against the in-process emulator."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import emit_json, pass_app


@main.command("demo")
@click.option("-o", "--out", "out_dir", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the sample inputs, the saved plan and the reports.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object saying what was written.")
@pass_app
def demo_cmd(app, out_dir, as_json):
    """Run sample -> ingest -> audit -> plan -> execute (emulator) -> reports, all in DIR.

    The estate is the default `migrator sample` (2,000 tokens, 12 pages, seed 7), which
    the worked plan spec plans/sample.toml is written for. Nothing leaves the machine: sends go to the in-process emulator on a virtual clock, so
    campaign warm-up and send windows pass in seconds. The workspace is --db if given,
    else DIR/migration.db (recreated on each run).

    \b
    Example:
      migrator demo -o demo && xdg-open demo/readiness.html
    """
    from migrator.demo import run_demo

    result = run_demo(out_dir, db_path=app.db_path,
                      say=(lambda m: None) if as_json else click.echo)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo("")
    click.echo(f"Everything is in {result.out_dir}/ (workspace {result.db_path}).")
    click.echo(f"Open first: {result.reports['readiness']}  (what each business must do, and when)")
    click.echo(f"Then:       {result.reports['audit']}  (every subscriber's verdict and why)")
    click.echo(f"            {result.reports['execution']}  (what was sent, skipped, failed)")
    click.echo(f"Resume or inspect: migrator --db {result.db_path} status")
