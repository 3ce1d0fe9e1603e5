"""`migrator convert FILE`: RN message(s) -> MM message(s), standalone (no workspace)."""

from __future__ import annotations

import json

import click
from pydantic import ValidationError

from migrator.cli import main
from migrator.cli.common import emit_json
from migrator.cli.rules_cmds import RULES_OPTION
from migrator.inputs import encoding_option


def _policy(unsupported_buttons, non_facebook_media, generic_image_title, max_line_breaks):
    from migrator.convert import ConvertPolicy

    try:
        return ConvertPolicy(unsupported_buttons=unsupported_buttons,
                             non_facebook_media_url=non_facebook_media,
                             generic_image_title=generic_image_title,
                             max_line_breaks=max_line_breaks)
    except ValidationError as exc:
        msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise click.UsageError(msg) from None


@main.command("convert")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True,
              help='Print {"results": [{"index", "line", "outcome", "message", "draft", "changes", "problems"}], '
                   '"counts": {...}}; message is null unless exact or lossy, draft is set for needs_edit.')
@click.option("--unsupported-buttons", type=click.Choice(["drop", "refuse"]), default="drop",
              show_default=True,
              help="Buttons/quick replies MM does not take: drop them (lossy) or refuse the message (needs_edit).")
@click.option("--non-facebook-media", type=click.Choice(["needs_edit", "to_generic"]), default="needs_edit",
              show_default=True,
              help="Images/videos at non-Facebook URLs: leave for a person to upload, or turn images "
                   "into a one-card generic template (needs --generic-image-title).")
@click.option("--generic-image-title", metavar="TEXT",
              help="Card title for --non-facebook-media to_generic (1-80 characters).")
@click.option("--max-line-breaks", type=click.IntRange(min=0), default=None, metavar="N",
              help="Line breaks allowed per text before MM error 2300073 is assumed (default: the "
                   "rules' mm_line_breaks_max, 20; Meta does not document the limit).")
@RULES_OPTION
@encoding_option
def convert_cmd(file, as_json, unsupported_buttons, non_facebook_media, generic_image_title,
                max_line_breaks, rules_path, encoding):
    """Convert RN Send API messages in FILE to Marketing Message form.

    FILE ("-" for stdin) holds one Send API body {"recipient", "message"} or bare message,
    a JSON array of them, or JSON Lines. Each message gets an outcome: exact, lossy (with
    every change listed), needs_edit (a person must change it) or unsupported (no MM form).
    Needs no workspace. See docs/conversion.md for the rules and codes.

    \b
    Examples:
      migrator convert sends.jsonl
      migrator convert --json --unsupported-buttons refuse message.json
    """
    from migrator.convert.files import convert_file
    from migrator.convert.limits import ContentLimits
    from migrator.rules import load_rules

    limits = ContentLimits.from_rules(load_rules(rules_path, encoding=encoding))
    policy = _policy(unsupported_buttons, non_facebook_media, generic_image_title, max_line_breaks)
    report = convert_file(file, policy, limits=limits, encoding=encoding)
    # nothing in the file could be read as a message at all: the command failed (exit 1), as an
    # ingest that accepted nothing does; unsupported *content* is an answer, not a failure
    unreadable = bool(report.results) and all(
        any(p.code == "INVALID_JSON" for p in r.problems) for r in report.results)
    if as_json:
        emit_json(report.to_json())
        if unreadable:
            raise SystemExit(1)
        return
    for r in report.results:
        where = f" (line {r.line})" if r.line is not None else ""
        click.echo(f"#{r.index}{where}: {r.outcome}")
        for c in r.changes:
            click.echo(f"  change  {c.code}: {c.detail}")
        for p in r.problems:
            code = f" [MM {p.mm_error_code}]" if p.mm_error_code else ""
            click.echo(f"  problem {p.code}{code}: {p.detail}")
        if r.outcome in ("exact", "lossy"):
            click.echo("  mm: " + json.dumps(r.message, ensure_ascii=False))
    counts = report.counts
    click.echo(f"{len(report.results)} message(s): " + ", ".join(f"{n} {o}" for o, n in counts.items()))
    if unreadable:
        click.echo(f"error: nothing in {file} could be read as RN content (not JSON or JSON Lines)", err=True)
        raise SystemExit(1)
