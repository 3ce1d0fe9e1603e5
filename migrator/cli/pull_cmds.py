"""`migrator pull tokens`: the Graph token listing straight into the workspace."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import MigratorGroup, pass_app, print_ingest_summary, progress


@main.group(cls=MigratorGroup)
def pull() -> None:
    """Fetch inventory from the Graph API (or a local emulator) into the workspace."""


@pull.command("tokens")
@click.option("--page-id", "page_ids", metavar="ID", multiple=True, required=True,
              help="Page whose tokens to list (repeat for several Pages).")
@click.option("--base-url", default=None, metavar="URL",
              help="Graph host (default https://graph.facebook.com; e.g. http://127.0.0.1:8765 for the emulator).")
@click.option("--api-version", default=None, metavar="vNN.N", help="Graph API version (default v24.0).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the Page access token (else env MIGRATOR_PAGE_TOKEN).")
@click.option("--limit", type=click.IntRange(1, 1000), default=1000, show_default=True,
              help="Tokens per listing request.")
@click.option("--dedupe", is_flag=True, help="Ask for one token per recipient (do_not_return_duplicates).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@pass_app
def pull_tokens_cmd(app, page_ids, base_url, api_version, token_file, limit, dedupe, as_json):
    """List every subscription token of the Pages (GET /<PAGE_ID>/notification_message_tokens).

    The Page token comes from MIGRATOR_PAGE_TOKEN or --token-file, never the command line.

    \b
    Examples:
      MIGRATOR_PAGE_TOKEN=... migrator pull tokens --page-id 1234 --page-id 5678
      migrator pull tokens --page-id 1234 --base-url http://127.0.0.1:8765 --token-file page.token --json
    """
    from migrator.graph import DEFAULT_BASE_URL, DEFAULT_VERSION, GraphClient, load_access_token
    from migrator.pull import pull_tokens

    token = load_access_token(token_file=token_file, kind="page")
    ws = app.workspace()
    filters = {"do_not_return_duplicates": True} if dedupe else {}
    with GraphClient(token, base_url=base_url or DEFAULT_BASE_URL, version=api_version or DEFAULT_VERSION) as g, \
            progress(app, desc="pull tokens", unit="tok") as bar:
        summary = pull_tokens(ws, g, page_ids, limit=limit, progress=bar.update, **filters)
    print_ingest_summary(summary, as_json)
