"""`migrator pull tokens`: the Graph token listing straight into the workspace."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import MigratorGroup, pass_app, print_ingest_summary, progress


@main.group(cls=MigratorGroup)
def pull() -> None:
    """Fetch inventory from the Graph API (or a local emulator) into the workspace."""


@pull.command("tokens")
@click.option("--page-id", "page_ids", metavar="ID", multiple=True,
              help="Page whose tokens to list (repeat for several Pages; default with --page-tokens: "
                   "every Page of the map).")
@click.option("--base-url", default=None, metavar="URL",
              help="Graph host (default https://graph.facebook.com; e.g. http://127.0.0.1:8765 for the emulator).")
@click.option("--api-version", default=None, metavar="vNN.N", help="Graph API version (default v24.0).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the Page access token (else env MIGRATOR_PAGE_TOKEN).")
@click.option("--page-tokens", "page_tokens", type=click.Path(dir_okay=False), default=None,
              help="File of page_id<TAB>token lines, mode 0600: each Page listed with its own Page "
                   "token (a Page token only reads its own Page).")
@click.option("--limit", type=click.IntRange(1, 1000), default=1000, show_default=True,
              help="Tokens per listing request.")
@click.option("--dedupe", is_flag=True, help="Ask for one token per recipient (do_not_return_duplicates).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@pass_app
def pull_tokens_cmd(app, page_ids, base_url, api_version, token_file, page_tokens, limit, dedupe, as_json):
    """List every subscription token of the Pages (GET /<PAGE_ID>/notification_message_tokens).

    Each Page needs its own Page token: give several Pages as a --page-tokens map
    (page_id<TAB>token lines, mode 0600), or one Page with MIGRATOR_PAGE_TOKEN / --token-file.
    Tokens never go on the command line and are never printed.

    \b
    Examples:
      MIGRATOR_PAGE_TOKEN=... migrator pull tokens --page-id 1234
      migrator pull tokens --page-tokens pages.tokens          # every Page in the map
      migrator pull tokens --page-id 1234 --base-url http://127.0.0.1:8765 --token-file page.token --json
    """
    from migrator.graph import DEFAULT_BASE_URL, DEFAULT_VERSION, GraphClient, load_access_token
    from migrator.inventory.pull import load_page_token_map, pull_tokens

    base, version = base_url or DEFAULT_BASE_URL, api_version or DEFAULT_VERSION
    if page_tokens and token_file:
        raise click.UsageError("give --page-tokens or --token-file, not both")
    if page_tokens:
        tokens = load_page_token_map(page_tokens)
        page_ids = [str(p).strip() for p in page_ids] or list(tokens)
        missing = [p for p in page_ids if p not in tokens]
        if missing:
            raise click.UsageError(f"no token for page(s) {', '.join(missing)} in {page_tokens}")

        def client(page_id):
            return GraphClient(tokens[page_id], base_url=base, version=version)
    else:
        if not page_ids:
            raise click.UsageError("give --page-id (or --page-tokens)")
        if len(set(page_ids)) > 1:
            raise click.UsageError("each Page needs its own Page token: for several Pages give "
                                   "--page-tokens FILE (page_id<TAB>token lines, mode 0600)")
        client = GraphClient(load_access_token(token_file=token_file, kind="page"), base_url=base,
                             version=version)
    ws = app.workspace()
    filters = {"do_not_return_duplicates": True} if dedupe else {}
    try:
        with progress(app, desc="pull tokens", unit="tok") as bar:
            summary = pull_tokens(ws, client, page_ids, limit=limit, progress=bar.update, **filters)
    finally:
        if isinstance(client, GraphClient):
            client.close()
    print_ingest_summary(summary, as_json)
