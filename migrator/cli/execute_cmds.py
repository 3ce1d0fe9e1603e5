"""`migrator execute | status | unlock` and `migrator ingest receipts`: the executor's commands."""

from __future__ import annotations

import shlex
import sys

import click

from migrator.cli import main
from migrator.cli.common import emit_json, info, pass_app, print_ingest_summary, progress
from migrator.cli.inventory_cmds import ingest
from migrator.inputs import encoding_option
from migrator.errors import MigratorError


def _resume_command(app, plan_path, *, concurrency, rate, base_url, token_file, batches, late="wait",
                    ca_cert=None) -> str:
    parts = ["migrator"]
    if app.db_path:
        parts += ["--db", str(app.db_path)]
    parts += ["execute", str(plan_path), "--execute"]
    if batches:
        parts += ["--batches", str(batches)]
    parts += ["--concurrency", str(concurrency)]
    if rate:
        parts += ["--rate", str(rate)]
    if base_url:
        parts += ["--base-url", base_url]
    if token_file:
        parts += ["--token-file", str(token_file)]
    if ca_cert:
        parts += ["--ca-cert", str(ca_cert)]
    if late != "wait":
        parts += ["--late", late]
    return shlex.join(parts)


def _transient_reason(value):
    from migrator.execute.ledger import TRANSIENT_FAILURES

    if value not in (None, "transient") and value not in TRANSIENT_FAILURES:
        raise click.BadParameter(f"{value!r} is not a transient failure reason (transient: "
                                 f"{', '.join(TRANSIENT_FAILURES)}); other failures need a new plan")
    return value


@main.command("execute")
@click.argument("plan_path", metavar="PLAN.json", type=click.Path(dir_okay=False))
@click.option("--execute", "really", is_flag=True, help="Really create campaigns and send (without it: a dry run).")
@click.option("--batches", type=click.IntRange(min=1), help="Process at most N batches (from the first unfinished).")
@click.option("--concurrency", type=click.IntRange(1, 512), default=64, show_default=True,
              help="At most N requests in flight; fewer while Meta throttles or its usage headers near 100 %.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="At most R sends per second.")
@click.option("--base-url", metavar="URL", help="Graph API base URL (e.g. an emulator: http://127.0.0.1:8765).")
@click.option("--resend-unknown", is_flag=True,
              help="Send again the unknown sends that receipts would have settled by now: unknown before this "
                   "run, and a receipt of their campaign newer than their request was ingested (ingest receipts "
                   "first!). Each row's reason is in exec_sends.resend_check.")
@click.option("--resend", "resend_named", type=int, multiple=True, metavar="SEND_ID",
              help="Send again this unknown send, whatever the receipts say (repeatable); a send in any "
                   "other state is refused (exit 2) with its state and what to do.")
@click.option("--receipt-margin", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="--resend-unknown: seconds a newer receipt must follow the send (webhook lag); at least "
                   "60 (Meta gives no bound on webhook lag), less only against a loopback --base-url (emulator).")
@click.option("--retry-failed", "retry_failed", is_flag=False, flag_value="transient", default=None,
              callback=lambda ctx, param, v: _transient_reason(v),
              metavar="[REASON]", help="Put sends that failed for a transient cause (retries_exhausted) back "
                                       "to planned; optionally only this reason.")
@click.option("--no-wait", is_flag=True, help="Do not wait for warm-up or scheduled sends: stop; run again later.")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="File holding the access token (else MIGRATOR_ACCESS_TOKEN).")
@click.option("--warmup-poll", "warmup_poll", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Check a warming-up campaign every SECONDS (default: 5 s, doubling up to the rules' "
                   "warmup_poll_max_seconds).")
@click.option("--http", "http", type=click.Choice(["auto", "aiohttp", "httpx"]), default="auto", show_default=True,
              help="HTTP client: aiohttp (auto: the same for Meta's https and http rehearsals) or httpx's "
                   "stack (several times the CPU per send).")
@click.option("--ca-cert", "ca_cert", type=click.Path(dir_okay=False), envvar="MIGRATOR_CA_CERT",
              help="Also trust this certificate (rehearsals against `emulator serve --tls`; env "
                   "MIGRATOR_CA_CERT). Verification is never switched off.")
@click.option("--late", type=click.Choice(["wait", "skip"]), default="wait", show_default=True,
              help="A send whose recipient's local send window has passed: wait for the next window (skipped as "
                   "window_missed once its campaign has ended), or skip it now as window_missed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the summary.")
@pass_app
def execute_cmd(app, plan_path, really, batches, concurrency, rate, base_url, resend_unknown, resend_named,
                receipt_margin, retry_failed, no_wait, token_file, warmup_poll, http, ca_cert, late,
                as_json):
    """Run a saved plan: create its campaigns and send every planned message exactly once.

    Without --execute this is a dry run through the same code: every request is validated and
    counted, nothing is sent, nothing is left behind. A stale plan is refused. The access token
    comes from MIGRATOR_ACCESS_TOKEN or --token-file, never from the command line.
    Ctrl-C finishes the requests in flight, commits, prints the command that resumes and exits
    130 (SIGTERM: 143). After a crash: ingest the receipts, run again; see docs/execute.md.

    \b
    Examples:
      migrator execute plan.json                      # dry run: what would be sent
      migrator execute plan.json --execute --concurrency 64 --rate 500
      migrator execute plan.json --execute --base-url http://127.0.0.1:8765 --no-wait
      migrator execute plan.json --execute --resend-unknown     # after `migrator ingest receipts`
    """
    from migrator.execute import execute_plan, remaining_sends
    from migrator.plan import load_plan
    from migrator.plan.spec_source import check_plan_workspace
    from migrator.store import resolve_db_path

    plan = load_plan(plan_path)
    check_plan_workspace(plan, resolve_db_path(app.db_path))  # never an empty migration.db
    ws = app.workspace(create=False)
    resume = _resume_command(app, plan_path, concurrency=concurrency, rate=rate, base_url=base_url,
                             token_file=token_file, batches=batches, late=late, ca_cert=ca_cert)
    if ca_cert and really:
        info(app, f"trusting {ca_cert} besides the system's certificate authorities (a rehearsal certificate)")
    with progress(app, total=remaining_sends(ws, plan), desc="execute" if really else "dry run", unit="send") as bar:
        def notify(msg: str) -> None:
            if not app.quiet:
                bar.write(msg, file=sys.stderr)

        summary = execute_plan(ws, plan, execute=really, base_url=base_url, token_file=token_file,
                               concurrency=concurrency, rate=rate, batches=batches, resend_unknown=resend_unknown,
                               resend_named=tuple(resend_named), receipt_margin=receipt_margin,
                               retry_failed=retry_failed, wait=not no_wait, notify=notify, progress=bar.update,
                               handle_signals=True, http=http, ca_cert=ca_cert, late=late,
                               warmup_poll=warmup_poll)
    out = summary.to_json()
    if really and summary.resumable:
        out["resume_command"] = resume
    if as_json:
        emit_json(out)
    else:
        _print(summary, really)
    if summary.outcome in ("interrupted", "waiting", "stopped", "fatal") and really:
        info(app, f"to resume: {resume}")
    if summary.outcome == "fatal":
        raise MigratorError(f"the run stopped: {summary.error}", hint=summary.hint)
    if summary.exit_code:
        sys.exit(summary.exit_code)


def _print(s, really: bool) -> None:
    if not really:
        _print_dry_run(s)
        return
    click.echo(f"plan {s.plan_id}: {s.outcome}; this run: {s.attempted} requests, {s.sent} sent, "
               f"{s.unknown} unknown, {s.failed} failed, {s.skipped} skipped, {s.rescheduled} rescheduled "
               f"({s.rate_per_second}/s)")
    led = s.ledger
    click.echo("  ledger: " + ", ".join(f"{k} {led.get(k, 0)}" for k in
                                        ("planned", "sent", "skipped", "failed", "unknown")))
    if s.lock_note:
        click.echo(f"  {s.lock_note}")
    if s.killed_runs:
        click.echo(f"  {s.killed_runs} earlier run(s) had been killed (recorded as killed in the run history)")
    if s.settled_by_receipts:
        click.echo(f"  {s.settled_by_receipts} sends settled by receipts ingested earlier")
    if s.retried_failed:
        click.echo(f"  {s.retried_failed} failed sends put back to planned (--retry-failed)")
    for why, n in s.resend.items():
        click.echo(f"  --resend-unknown: {n} {why}")
    if s.pauses:
        click.echo(f"  pauses: {sum(s.pauses.values())} (" + ", ".join(
            f"{_PAUSE_WORDS.get(k, k)} {n}" for k, n in sorted(s.pauses.items())) + ")")
    if s.recovered_unknown:
        click.echo(f"  {s.recovered_unknown} sends of an interrupted run are now unknown: run "
                   "`migrator ingest receipts WEBHOOKS.jsonl`, then this command again with --resend-unknown")
    if s.never_left:
        click.echo(f"  {s.never_left} requests never left (no connection); they stay planned, no attempt counted")
    for k, n in list(s.reasons.items())[:8]:
        click.echo(f"  {k}: {n}")
    if s.window_waiting:
        from datetime import datetime, timezone

        at = datetime.fromtimestamp(s.window_opens_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"  {s.window_waiting} sends wait for their recipients' local send window (the first until {at})")
    for t in s.breaker:
        click.echo(f"  breaker tripped on page {t['page_id']}: {t['refusals']} of {t['rule']} {t['attempts']} "
                   f"attempts refused with {t['code']}; likely cause: {t['cause']}; to check: {t['check']}")
    for c in s.campaigns:
        click.echo(f"  campaign {c['key']} {c['name']!r}: {c['state']} {c['message_id'] or ''}"
                   + (f" ({c['reason'] or c['error']})" if (c['reason'] or c['error']) else ""))
    if s.waiting_for:
        click.echo(f"  waiting for {s.waiting_for}" + (f" (next at epoch {s.next_due_at})" if s.next_due_at else ""))
    if s.error and s.outcome != "fatal":
        click.echo(f"  {s.error}" + (f" ({s.hint})" if s.hint else ""))
    if s.signal:
        click.echo(f"  interrupted by {s.signal}")


_REAL_WORDS = {"sent": "went out", "skipped": "skipped", "failed": "failed", "unknown": "unknown"}
_PAUSE_WORDS = {"all": "every send", "campaign": "one campaign", "request": "one send"}
_WOULD_STATE = {"planned": "still planned", "sent": "would send", "skipped": "would skip", "failed": "would fail",
                "unknown": "would be unknown"}


def _print_dry_run(s) -> None:
    """A dry run's text never says "sent" or "created": it says what would happen."""
    d = s.dry_run or {}
    click.echo(f"dry run of plan {s.plan_id}: no request left this machine; this is what a real run would do")
    click.echo(f"  campaigns it would create: {d.get('campaigns_created', 0)}")
    click.echo(f"  sends it would make: {d.get('sends_accepted', 0)}; would be refused by validation: "
               f"{d.get('sends_refused', 0)} {d.get('refused_by_code') or ''}".rstrip())
    led, done = s.ledger, d.get("already") or {}
    click.echo("  the ledger would end with: " + ", ".join(
        f"{_WOULD_STATE[k]} {led.get(k, 0) if k == 'planned' else max(0, led.get(k, 0) - done.get(k, 0))}"
        for k in ("planned", "sent", "skipped", "failed", "unknown")))
    real = {k: done.get(k, 0) for k in ("sent", "skipped", "failed", "unknown") if done.get(k)}
    if real:
        click.echo("  already done by real runs: " + ", ".join(
            f"{n} {_REAL_WORDS[k]}" for k, n in real.items()))
    for k, n in list(s.reasons.items())[:8]:
        state, _, reason = k.partition(":")
        click.echo(f"  {_WOULD_STATE.get(state, state)} ({reason}): {n}")
    for c in s.campaigns:
        what = "would reuse the existing campaign" if c["reused"] else \
            "would create it" if c["created"] else "already set up by a real run"
        click.echo(f"  campaign {c['key']} {c['name']!r}: {what}"
                   + (f" ({c['reason'] or c['error']})" if (c['reason'] or c['error']) else ""))
    if s.error:
        click.echo(f"  {s.error}" + (f" ({s.hint})" if s.hint else ""))


@main.command("status")
@click.option("--plan", "plan_id", metavar="PLAN_ID", help="Only this plan.")
@click.option("--batches", "show_batches", is_flag=True, help="Also list every batch (text output).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def status_cmd(app, plan_id, show_batches, as_json):
    """Where each plan stands: per campaign and batch, to send / sent / skipped / failed / unknown,
    delivered, read and spend, plus plan staleness and the executor lock.

    \b
    Examples:
      migrator status
      migrator status --plan p0123456789ab --json
    """
    from migrator.execute import execution_status
    from migrator.money import format_money

    st = execution_status(app.workspace(readonly=True), plan_id)
    if as_json:
        emit_json(st.to_json())
        return
    if not st.plans:
        click.echo("no plans in this workspace (make one with `migrator plan SPEC.toml -o PLAN.json`)")
    # the ledger's "planned" is what remains: "to send"; money in major units (migrator.money)
    cols = ("to_send", "in_flight", "sent", "skipped", "failed", "unknown", "delivered", "read")

    def counts(x) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {getattr(x, k):,}" for k in cols)

    def spend(by_cur: dict[str, int]) -> str:
        return "; ".join(format_money(n, cur) for cur, n in by_cur.items()) or format_money(0, "")

    for p in st.plans:
        click.echo(f"plan {p.plan_id} ({p.name}): {p.status}; spend {spend(p.spend)} accepted"
                   " (sends Meta accepted × the plan's cost per message; Meta bills delivered messages)")
        click.echo("  " + counts(p))
        for s in p.stale:
            click.echo(f"  stale: {s}")
        for c in p.campaigns:
            click.echo(f"  campaign {c.key} {c.name!r} [{c.state}] {counts(c)}, "
                       f"spend {format_money(c.spend, c.currency or '')} accepted")
        rows = p.batches if show_batches else [b for b in p.batches if b.to_send or b.in_flight][:5]
        for b in rows:
            click.echo(f"  batch {b.batch} ({b.day}): {counts(b)}")
    if st.lock:
        lk = st.lock
        click.echo(f"lock: {lk.owner} pid {lk.pid} on {lk.host}, plan {lk.plan_id}: {lk.state}"
                   + (f" (may be taken over: {lk.stale})" if lk.stale else ""))


@main.command("unlock")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def unlock_cmd(app, yes):
    """Remove the executor lock of this workspace (after a crash on another machine).

    \b
    Example:
      migrator unlock
    """
    from migrator.execute import force_unlock, read_lock
    from migrator.execute.lock import alive_here, staleness

    import time

    ws = app.workspace(create=False)
    lk = read_lock(ws.conn)
    if lk is None:
        click.echo("no executor lock is held")
        return
    why = staleness(lk, now=time.time())
    click.echo(f"lock held by {lk.describe()}" + (f"; looks stale: {why}" if why else "; it looks ALIVE"))
    if not alive_here(lk) and not yes and not click.confirm("remove it?", default=False):
        click.echo("lock kept")
        return
    force_unlock(ws.conn)    # refuses (exit 1) while its process is alive on this host
    click.echo("lock removed")


@ingest.command("receipts")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@pass_app
def ingest_receipts_cmd(app, paths, encoding, as_json):
    """Ingest MM webhooks (echoes, deliveries, reads, delivery failures) to settle the send ledger.

    Unknown sends with an echo or delivery become sent (never sent twice); deliveries and reads
    are counted in `migrator status`.

    \b
    Example:
      migrator ingest receipts webhooks.jsonl --json
    """
    from migrator.execute import ingest_receipts

    with progress(app, desc="ingest receipts", unit="event") as bar:
        summary = ingest_receipts(app.workspace(), paths, progress=bar.update, encoding=encoding)
    print_ingest_summary(summary, as_json)
