"""`migrator ingest tokens|pages|content`: load a partner's RN estate into the workspace."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import (
    MigratorGroup, delimiter_option, pass_app, print_ingest_summary, progress,
)
from migrator.inputs import encoding_option

_FORMATS = click.Choice(["auto", "csv", "jsonl", "webhooks"])


@main.group(cls=MigratorGroup)
def ingest() -> None:
    """Load tokens, pages, content or MM receipts into the workspace.

    Every input record is counted once: accepted, duplicate, ignored or rejected.
    Rejected records are kept (table `rejects`) with file, line and reason.
    """


@ingest.command("tokens")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=_FORMATS, default="auto", show_default=True,
              help="Input format; auto looks at the content (gzip is always detected).")
@click.option("--strict", is_flag=True, help="Stop at the first bad record (exit 1); nothing from that file is written.")
@click.option("--page-id", metavar="ID", help="Page id for token-listing dumps that lack one.")
@click.option("--workers", type=click.IntRange(min=0), default=None, metavar="N",
              help="Processes that parse a large file in parallel [default: one per core; "
                   "0 parses in this process].")
@encoding_option
@delimiter_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@pass_app
def ingest_tokens_cmd(app, paths, fmt, strict, page_id, workers, encoding, delimiter, as_json):
    """Ingest RN subscription tokens: CSV, token-listing JSONL or webhook deliveries.

    A file larger than 8 MB is parsed by worker processes while this one merges;
    the result is the same as parsing it here.

    \b
    Examples:
      migrator ingest tokens tokens.csv webhooks.jsonl.gz
      migrator ingest tokens --format jsonl --page-id 1234 listing.jsonl --json
      migrator ingest tokens --workers 0 big.csv      # one process only
      migrator ingest tokens --encoding cp1252 excel-windows.csv

    Exit code 1 when nothing of a file was accepted but something was rejected.
    """
    from migrator.inventory.ingest import ingest_tokens
    from migrator.inventory.tokens import BadValue, _page_id

    if page_id is not None:
        try:
            _page_id(page_id, "--page-id")
        except BadValue as exc:
            raise click.BadParameter(str(exc), param_hint="--page-id") from None
    ws = app.workspace()
    with progress(app, desc="ingest tokens", unit="rec") as bar:
        summary = ingest_tokens(ws, paths, fmt=fmt, strict=strict, page_id=page_id,
                                progress=bar.update, workers=workers, encoding=encoding,
                                delimiter=delimiter)
    print_ingest_summary(summary, as_json)


@ingest.command("pages")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Stop at the first bad row (exit 1).")
@encoding_option
@delimiter_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@pass_app
def ingest_pages_cmd(app, paths, strict, encoding, delimiter, as_json):
    """Ingest pages from CSV: page_id, name, business_country, ad_account_id, currency.

    \b
    Example:
      migrator ingest pages pages.csv
    """
    from migrator.inventory.pages import ingest_pages

    print_ingest_summary(ingest_pages(app.workspace(), paths, strict=strict, encoding=encoding,
                                      delimiter=delimiter), as_json)


@ingest.command("content")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Stop at the first bad record (exit 1).")
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@pass_app
def ingest_content_cmd(app, paths, strict, encoding, as_json):
    """Ingest RN message content: logged Send API bodies or a content library.

    Content is deduplicated by a hash of the normalised message and converted to
    Marketing Message form (see `migrator convert`) for the audit and the planner.

    \b
    Examples:
      migrator ingest content sends.jsonl
      migrator ingest content library.json --json
    """
    from migrator.inventory.content import ingest_content

    print_ingest_summary(ingest_content(app.workspace(), paths, strict=strict, encoding=encoding),
                         as_json)
