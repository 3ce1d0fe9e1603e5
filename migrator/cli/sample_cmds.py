"""`migrator sample`: write the synthetic RN estate (no workspace needed)."""

from __future__ import annotations

import click

from migrator.cli import main
from migrator.cli.common import emit_json, pass_app


@main.command("sample")
@click.option("-o", "--out", "out_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False),
              help="Directory to write into (created if missing; files an earlier sample wrote there "
                   "are replaced, any other file is refused unless --force).")
@click.option("--tokens", default=2000, show_default=True, type=click.IntRange(100, 5_000_000),
              help="How many subscription tokens.")
@click.option("--pages", default=12, show_default=True, type=click.IntRange(1, 1000),
              help="How many Facebook Pages (the first 12 cover every page case).")
@click.option("--seed", default=7, show_default=True, type=int,
              help="Random seed: the same arguments give byte-identical files.")
@click.option("--force", is_flag=True, help="Replace files in DIR that an earlier sample did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as one JSON object.")
@pass_app
def sample_cmd(app, out_dir, tokens, pages, seed, force, as_json):
    """Write a deterministic synthetic RN estate in every input format.

    Pages, tokens (CSV, token listing, webhook deliveries), content (Send API bodies and a
    library), subscribers for the emulator, and truth.jsonl: the state ingest and audit
    must reach. A few malformed lines are included on purpose (see manifest.json).

    \b
    Example:
      migrator sample -o estate --tokens 5000 --seed 7
      migrator ingest pages estate/pages.csv
      migrator ingest tokens estate/tokens.csv estate/tokens_listing.jsonl estate/webhooks.jsonl
      migrator ingest content estate/content_sends.jsonl estate/content_library.json
    """
    from migrator.sample import generate_sample

    manifest = generate_sample(out_dir, tokens=tokens, pages=pages, seed=seed, force=force)
    if as_json:
        emit_json(manifest.model_dump(mode="json"))
        return
    click.echo(f"wrote a sample estate to {manifest.out_dir}: {manifest.tokens} tokens of "
               f"{manifest.persons} people on {manifest.pages} pages (seed {manifest.seed})")
    for f in manifest.files:
        bad = f", {len(f.malformed)} malformed (line {', '.join(str(m.line) for m in f.malformed)})" \
            if f.malformed else ""
        click.echo(f"  {f.name:22s} {f.records:>9,} records{bad}")
    c = manifest.counts
    click.echo("  status: " + ", ".join(f"{k} {v}" for k, v in c["status"].items()))
    click.echo("  region: " + ", ".join(f"{k} {v}" for k, v in c["region_class"].items()))
