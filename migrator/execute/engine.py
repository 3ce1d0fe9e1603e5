"""The executor's entry points: run a saved plan's sends exactly once, resumable and crash-safe.

`execute_plan` (sync) builds the client and the signal handling around `execute_plan_async`,
which reads as its steps: admit and set up (freshness, lock, recovery, campaigns), the send loop
(loop.Run: a producer claims due rows committed in_flight before their requests leave;
`concurrency` workers send them through the paced `AsyncGraphClient`, send.Sender turning each
answer into a ledger transition per class, outcomes.py), and the wind-down (outcome, run record,
lock release). Dry runs use the same code on a scratch ledger with the recording transport.
The options and the summary are summary.py's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from migrator.errors import OptionError, PlanError
from migrator.execute import campaigns as camp
from migrator.execute import runs
from migrator.execute.ledger import KEEP_RECOVERED_NOW, Ledger, Result
from migrator.execute.lock import acquire
from migrator.execute.loop import Run, _wait_or_sleep
from migrator.execute.outcomes import error_code
from migrator.execute.sendable import Screen
from migrator.execute.summary import ExecOptions, ExecutionSummary
from migrator.execute.transport import RecordingTransport
from migrator.graph import AccountFatal, AsyncGraphClient, GraphError, NO_RETRY
from migrator.timeparse import DAY


def _screen(conn, plan, ledger: Ledger, rules, opts: ExecOptions, notify) -> Screen:
    """The claim-time checks of this run (execute/sendable.py).

    A dry run looks at every send as due (no window, no cadence) but still skips stopped tokens.
    """
    from migrator.plan.spec import parse_window
    from migrator.plan.windows import Windows

    windows = None
    if opts.execute and plan.window:
        origin = min([b.not_before for b in plan.batches] + [int(plan.created_at)]) - 2 * DAY
        windows = Windows(*parse_window(plan.window), default_zone=plan.default_timezone or "UTC", origin=origin)
    elif opts.execute:
        notify("this plan was made before plans recorded their send window: the window is not checked at "
               "send time (make a new plan to have it checked)")
    return Screen(table=ledger.table("exec_sends"), plan_id=plan.plan_id,
                  cadence_seconds=int(rules.mm_cadence_hours.value * 3600) if opts.execute else None,
                  windows=windows, ends={c.key: c.end_time for c in plan.campaigns}, late=opts.late)


async def _record_zones(run: Run, ledger: Ledger, plan, client, *, clock, notify, max_batch: int) -> None:
    """Read each ad account's time zone once (at setup) and record it with its campaigns."""
    zones: dict[str, tuple[str | None, str]] = {}
    for c in run.campaigns.values():
        if run.stop.is_set():
            return
        if c.account_timezone or c.state == "stopped" or not ledger.open_count(c.key, max_batch):
            continue
        if c.ad_account_id not in zones:
            zones[c.ad_account_id] = await camp.account_timezone(client, c.ad_account_id)
            if zones[c.ad_account_id][0] is None:
                notify(f"ad account {c.ad_account_id}: time zone {zones[c.ad_account_id][1]}; "
                       "a daily-budget stop will wait until 00:00 UTC")
        zone, source = zones[c.ad_account_id]
        if zone:
            camp.record_zone(ledger, plan.plan_id, c, zone, source, clock())


def _load_plan(ws, plan):
    from migrator.plan import SavedPlan, load_plan

    if isinstance(plan, SavedPlan):
        return plan
    if isinstance(plan, (str, Path)):
        return load_plan(plan)
    raise PlanError(f"not a plan: {plan!r}")


def _check_names(plan) -> None:
    """Campaigns are found again by name (idempotent setup): names must be unique per ad account."""
    seen: dict[tuple[str, str], str] = {}
    for c in plan.campaigns:
        other = seen.setdefault((c.ad_account_id, c.name), c.key)
        if other != c.key:
            raise PlanError(f"campaigns {other} and {c.key} are both named {c.name!r} in ad account "
                            f"{c.ad_account_id}: the executor finds its campaigns again by name",
                            hint="put {topic} or {key} in the spec's [campaign] name and make a new plan")


@dataclass
class _Execution:
    """What the setup hands to the send loop and the wind-down of one `execute_plan_async` call.

    One object, so the three steps share the run's state by name rather than through a long list
    of locals, and the wind-down can release exactly what the setup took.
    """
    ws: Any
    plan: Any
    opts: ExecOptions
    client: Any
    clock: Callable[[], float]
    stop: asyncio.Event
    summary: ExecutionSummary
    ledger: Ledger
    lock: Any
    t0: float
    run_id: int | None = None
    run: Run | None = None
    max_batch: int = -1
    already: dict | None = None      # a dry run: what real runs have already settled (not its own doing)


async def execute_plan_async(ws, plan, *, client: AsyncGraphClient, opts: ExecOptions, clock=time.time,
                             sleep=asyncio.sleep, notify: Callable[[str], None] = lambda m: None,
                             progress: Callable[[int], None] = lambda n: None,
                             stop: asyncio.Event | None = None, rules=None,
                             recorder: RecordingTransport | None = None,
                             signal_box: dict | None = None) -> ExecutionSummary:
    """Run (or dry-run) a saved plan; see `execute_plan` for the sync entry point.

    Three steps: the setup (freshness, lock, recovery, campaigns), the send loop, and the
    wind-down (summary, run record, lock release). The wind-down's release runs whatever the
    first two raised. `signal_box` (filled by the signal handler) names the signal that
    interrupted the run.
    """
    from migrator.rules import load_rules

    plan = _load_plan(ws, plan)
    _check_names(plan)
    rules = rules or load_rules(plan.rules_path)
    ex = _admit(ws, plan, client=client, opts=opts, clock=clock, stop=stop or asyncio.Event())
    try:
        await _set_up(ex, rules, sleep=sleep, notify=notify, progress=progress)
        await _send_loop(ex)
        _summarise(ex, recorder=recorder, signal_box=signal_box)
    finally:
        _wind_down(ex)
    return ex.summary


def _admit(ws, plan, *, client, opts: ExecOptions, clock, stop: asyncio.Event) -> _Execution:
    """Setup, first half: refuse a stale plan or a held workspace before anything is written.

    A refusal of a real run is recorded in the run history (`exec_runs`, read by the execution
    report: nothing was sent, and why) and raised; nothing taken here needs undoing. A real run takes the lock
    and the workspace's ledger; a dry run a scratch ledger that the wind-down drops.
    """
    from migrator.errors import LockHeldError, StalePlanError
    from migrator.plan import check_fresh

    try:
        # the executor's own writes (exec_*, mm_feedback) are not plan inputs: nothing to excuse
        check_fresh(ws, plan)
    except StalePlanError as exc:
        if opts.execute:
            runs.record_refused(ws.conn, plan.plan_id, exc.message, now=int(clock()))
        raise
    summary = ExecutionSummary(plan.plan_id, "execute" if opts.execute else "dry_run")
    t0 = time.monotonic()
    lock = None
    conn = ws.conn
    if opts.execute:
        try:
            lock = acquire(conn, plan.plan_id)
        except LockHeldError as exc:
            runs.record_refused(conn, plan.plan_id, exc.message, now=int(clock()))
            raise
        summary.lock_note = lock.took_over
        ledger = Ledger(conn, plan.plan_id, clock=clock)
    else:
        ledger = Ledger.scratch(conn, plan.plan_id, clock=clock, batches=opts.batches)
    return _Execution(ws, plan, opts, client, clock, stop, summary, ledger, lock, t0)


async def _set_up(ex: _Execution, rules, *, sleep, notify, progress) -> None:
    """Setup, second half: settle what earlier runs left, then make sure the campaigns exist.

    Order matters: dead runs are marked and receipts settle rows before any row is recovered or
    claimed, so a send Meta already took is never sent again; `--resend-unknown` decides before
    `recover()` so rows this run finds in flight stay unknown until receipts can speak. Campaigns
    are set up only for batches this run may send; a set-up refusal stops its page, not the run,
    and an account-level fatal error ends the run at `ex.run.fatal` (the wind-down reports it).
    """
    ws, plan, opts, clock, stop, summary, ledger = ex.ws, ex.plan, ex.opts, ex.clock, ex.stop, ex.summary, ex.ledger
    client = ex.client
    conn = ws.conn
    if opts.execute:   # we hold the lock: an unfinished run is a dead one
        summary.killed_runs = runs.mark_killed(conn, own_pid=os.getpid())
        ex.run_id = runs.start(conn, plan.plan_id, now=int(clock()))
    ledger.ensure_rows()
    # receipts first: a row Meta already took is settled before anything could re-send it
    summary.settled_by_receipts = ledger.settle()
    if opts.retry_failed:
        summary.retried_failed = ledger.retry_failed(opts.retry_failed)
    if opts.resend_unknown or opts.resend_named:
        # before recover(): rows this run finds in flight stay unknown until receipts can speak
        try:
            decisions = ledger.resend_unknown(margin=opts.receipt_margin if opts.resend_unknown else float("inf"),
                                              named=opts.resend_named)
        except OptionError as exc:      # a named row that is not unknown: nothing was changed
            summary.outcome, summary.error = "refused", exc.message
            raise
        summary.resent_unknown = decisions.resent_total
        summary.resend = {**decisions.resent, **decisions.kept}
    summary.recovered_unknown = ledger.recover()
    if summary.recovered_unknown and (opts.resend_unknown or opts.resend_named):
        summary.resend[KEEP_RECOVERED_NOW] = summary.recovered_unknown
    if not opts.execute:
        ex.already = {k: n for k, n in ledger.counts().items() if k in ("sent", "skipped", "failed", "unknown") and n}
    ledger.set_status("running")
    ledger.screen = _screen(conn, plan, ledger, rules, opts, notify)
    run = ex.run = Run(ws, plan, client, ledger, opts, clock=clock, sleep=sleep, notify=notify, progress=progress,
                       stop=stop, lock=ex.lock, rules=rules, summary=summary)
    run.campaigns = camp.load_campaigns(ledger, plan)
    keys = [c.key for c in plan.campaigns]
    first = ledger.first_open_batch(keys)
    if first is None:
        max_batch = -1
    else:
        max_batch = first + opts.batches - 1 if opts.batches else max((b.batch for b in plan.batches),
                                                                      default=first)
    ex.max_batch = max_batch
    try:
        if opts.execute and max_batch >= 0:
            await _record_zones(run, ledger, plan, client, clock=clock, notify=notify, max_batch=max_batch)
        todo = [c for c in run.campaigns.values()
                if not c.message_id and c.state != "stopped" and ledger.open_count(c.key, max_batch)]
        await _ensure_campaigns(run, todo, opts, sleep=sleep, notify=notify)
    except AccountFatal as err:
        run.fatal = err


SETUP_CONCURRENCY = 8     # campaign set-up calls in flight at once (one campaign's calls stay in order)
SETUP_HEARTBEAT = 30.0    # a set-up backoff refreshes the lock's heartbeat at least this often


async def _set_up_wait(run: Run, sleep, seconds: float) -> None:
    """A set-up backoff (a campaign-creation throttle may ask for minutes): it wakes at a stop, and
    the lock's heartbeat goes on meanwhile. The send loop's group commits beat the heartbeat; before
    them nothing did, so a set-up waiting out 2300079 looked like a dead executor after
    lock.STALE_AFTER and a second `execute` took the workspace over and set up the same campaigns."""
    left = seconds
    while not run.stop.is_set():
        if run.lock is not None and not run.lock.heartbeat(run.ledger.conn, force=True):
            run.lost_lock = True
            run.stop.set()
            return
        if left <= 0:
            return
        step = min(left, SETUP_HEARTBEAT)
        await _wait_or_sleep(run.stop, sleep, step)
        left -= step


async def _ensure_campaigns(run: Run, todo, opts: ExecOptions, *, sleep, notify) -> None:
    """Give every campaign of `todo` its message id, up to SETUP_CONCURRENCY campaigns at a time.

    One after another, 50 campaigns cost about 30 s of set-up against a Meta answering in 150 ms
    before the first send. Each campaign's own steps (look up by name, create, retry, record) stay
    in order inside `ensure_campaign`, and campaigns are independent (unique names per ad account,
    `_check_names`), so running several at once changes no outcome. Each ad account is listed once,
    before its campaigns start. A page's set-up refusal stops that page; an account-level fatal
    error stops starting new campaigns, lets those under way finish and is raised once all have.
    """
    client, stop, ledger, plan = run.client, run.stop, run.ledger, run.plan
    known: dict[str, dict[str, str] | None] = {}
    for account in dict.fromkeys(c.ad_account_id for c in todo):
        if stop.is_set():
            return
        try:
            known[account] = await camp.existing_by_name(client, account)
        except AccountFatal as err:
            from migrator.preflight.guidance import SETUP_STOPS

            if error_code(err) not in SETUP_STOPS:
                raise
            # a set-up refusal concerns this account's pages, not the run: each of its campaigns
            # meets it in its own look-up and stops its page (below); other accounts go on
            known[account] = None
        except GraphError:
            known[account] = None    # look up one by one
    gate = asyncio.Semaphore(max(1, min(SETUP_CONCURRENCY, opts.concurrency)))
    fatal: list[BaseException] = []

    async def one(c) -> None:
        async with gate:
            if stop.is_set() or fatal:
                return
            if c.state == "failed" and (c.reason or "").startswith("setup:"):
                return            # its page was just stopped by a set-up refusal
            try:
                await camp.ensure_campaign(ledger, plan, run.pcs[c.key], c, client, clock=run.clock,
                                           sleep=lambda s: _set_up_wait(run, sleep, s), notify=notify,
                                           known=known[c.ad_account_id], dry_run=not opts.execute, stop=stop)
            except AccountFatal as err:
                from migrator.preflight.guidance import SETUP_STOPS

                if error_code(err) not in SETUP_STOPS:
                    fatal.append(err)
                    return
                run._stop_page(c, error_code(err), err.message[:500])   # a page's set-up: other pages go on
            except Exception as exc:  # noqa: BLE001 - raised below, once the set-ups under way are done
                fatal.append(exc)

    # every set-up ends here, whatever another raised: none is left creating after the run wound down
    await asyncio.gather(*(one(c) for c in todo))
    if fatal:
        raise fatal[0]


async def _send_loop(ex: _Execution) -> None:
    """The send loop: one producer claims due rows, `concurrency` workers send them.

    Skipped after a fatal setup, a stop, or when no batch is open. However it ends, claimed rows
    not yet sent go back to planned and requests in flight finish and are committed, so the
    ledger never holds a row in flight that this process could still settle.
    """
    run, opts, stop = ex.run, ex.opts, ex.stop
    assert run is not None
    if run.fatal is None and ex.max_batch >= 0 and not stop.is_set():
        queue: asyncio.Queue = asyncio.Queue()
        workers = [asyncio.ensure_future(run.worker(queue)) for _ in range(max(1, opts.concurrency))]
        committer = asyncio.ensure_future(run.committer())
        try:
            await run.produce(queue, ex.max_batch)
        finally:
            # stop: claimed rows not yet sent go back to planned; in-flight requests finish
            while not queue.empty():
                row = queue.get_nowait()
                if row is not None:
                    run.results.append(Result(row.send_id, "planned", False))
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers, return_exceptions=True)
            committer.cancel()
            run.flush()
        run._close_new(set())
    run.flush()


def _summarise(ex: _Execution, *, recorder: RecordingTransport | None, signal_box: dict | None) -> None:
    """Wind-down, first half (when setup and loop returned): say how the run ended and why.

    One outcome for the exit code and the run record, most serious cause first (fatal, lost
    lock, network outage, signal), then page stops, breaker trips and campaigns that could not
    be set up, each with what to do; the ledger's counts and status last, from the database.
    """
    run, opts, stop, summary, ledger, client = ex.run, ex.opts, ex.stop, ex.summary, ex.ledger, ex.client
    assert run is not None
    summary.campaigns = [c.to_json() for c in run.campaigns.values()]
    summary.throttle_pauses, summary.max_usage_pct = run.pacer.pauses, run.pacer.max_usage_pct
    summary.in_flight_limit = run.gate.summary()
    if run.fatal is not None:
        summary.outcome = "fatal"
        summary.error = run.fatal.message
        summary.hint = run.fatal.hint or "fix the account setup, then run the same command again"
    elif run.lost_lock:
        summary.outcome = "stopped"
        summary.error = "the workspace lock was removed (migrator unlock) while this run was going"
    elif run.network_down:
        summary.outcome = "interrupted"
        summary.error = (f"no connection to {getattr(client, 'base_url', 'the Graph API')} for "
                         f"{opts.outage_limit_seconds:.0f} s; nothing that never left was counted as an attempt")
        summary.hint = "check the network, then run the same command again"
    elif stop.is_set():
        summary.outcome = "interrupted"
        summary.signal = (signal_box or {}).get("signal")
    if summary.outcome == "done" and summary.page_stops:
        summary.outcome = "stopped"
        summary.error = "; ".join(f"page {s['page_id']} stopped: {s['error']}" for s in summary.page_stops)
        summary.hint = " ".join(dict.fromkeys(s["what_to_do"] for s in summary.page_stops))
    run._window_note()
    if summary.breaker and summary.outcome in ("done", "stopped", "waiting"):
        summary.outcome = "stopped"
        err = "; ".join(f"breaker: {t['page_id']}: {t['refusals']} of {t['rule']} {t['attempts']} "
                        f"attempts refused with {t['code']}: {t['cause']}" for t in summary.breaker)
        hint = ("nothing was marked and the page's sends stay planned; "
                + "; ".join(t["check"] for t in summary.breaker))
        summary.error = f"{summary.error}; {err}" if summary.error else err
        summary.hint = f"{summary.hint} {hint}" if summary.hint else hint
    if summary.outcome == "done":
        broken = [c for c in run.campaigns.values() if c.state == "failed" and ledger.open_count(c.key)
                  and not (c.reason or "").startswith("breaker:")]
        if broken:
            summary.outcome = "stopped"
            summary.error = "; ".join(f"campaign {c.key} {c.name!r} could not be set up: {c.error}"
                                      for c in broken)
            summary.hint = "its sends stay planned: fix the cause, then run the same command again"
    summary.ledger = ledger.counts()
    summary.reasons = ledger.reasons()
    if summary.outcome == "done" and summary.ledger.get("planned"):
        if not summary.waiting_for and opts.batches:     # sends remain: never say "done"
            summary.waiting_for = f"the next run (this one was bounded by --batches {opts.batches})"
        summary.outcome = "waiting" if summary.waiting_for else "done"
    ledger.set_status({"done": "done" if not summary.ledger.get("planned") else "waiting"}.get(
        summary.outcome, summary.outcome))
    if recorder is not None:
        summary.dry_run = {**recorder.to_json(), "already": ex.already or {}}


def _wind_down(ex: _Execution) -> None:
    """Wind-down, second half (always, even when a step raised): time, run record, lock, scratch.

    The run history gets its outcome and summary, the lock is released and a dry run's scratch
    ledger dropped, so a crash inside the run never leaves the workspace held by a live process.
    """
    summary = ex.summary
    summary.elapsed_seconds = round(time.monotonic() - ex.t0, 3)
    if summary.elapsed_seconds > 0:
        summary.rate_per_second = round(summary.attempted / summary.elapsed_seconds, 1)
    if ex.run_id is not None:
        runs.finish(ex.ws.conn, ex.run_id, summary.outcome, json.dumps(summary.to_json()), now=int(ex.clock()))
    if ex.lock is not None:
        ex.lock.release()
    if not ex.opts.execute:
        ex.ledger.close_scratch()


# The least `--receipt-margin` against Meta. Meta documents no bound on how late an echo or delivery
# webhook may come (reference/mm-api.md §1.12: they report what happened after the send was
# accepted, asynchronously; §1.3: drops in that phase come only by webhook), and our clock and
# Meta's timestamps differ by a skew we cannot measure. 60 s is the margin the recovery procedure
# was designed with (docs/execute.md); with less, an echo of a *later* send that overtook this one's
# own echo would re-send a message Meta already took (billed twice).
RECEIPT_MARGIN_MIN_SECONDS = 60.0


def _loopback(base_url: str) -> bool:
    from urllib.parse import urlsplit

    from migrator.graph.wire import is_loopback_host

    return is_loopback_host(urlsplit(base_url).hostname or "")


def check_receipt_margin(margin: float, base_url: str) -> None:
    """Refuse a `--receipt-margin` below RECEIPT_MARGIN_MIN_SECONDS (exit 2), except against a
    loopback base URL: there only the local emulator serves, which writes each echo as it accepts
    the send, on this machine's clock, so no receipt can lag behind a later one (rehearsals and the
    chaos test use this)."""
    from migrator.errors import OptionError

    if margin >= RECEIPT_MARGIN_MIN_SECONDS or _loopback(base_url):
        return
    raise OptionError(
        f"--receipt-margin {margin:g} s is below the safe minimum of {RECEIPT_MARGIN_MIN_SECONDS:g} s: Meta "
        "documents no bound on how late an echo or delivery webhook arrives, so a shorter margin could "
        "re-send a message Meta already accepted (billed twice)",
        hint=f"use --receipt-margin {RECEIPT_MARGIN_MIN_SECONDS:g} or more (the default is 60); below it only "
             "against the local emulator (a loopback --base-url)")


def execute_plan(ws, plan, *, execute: bool = False, transport=None, base_url: str | None = None,
                 access_token: str | None = None, token_file: str | None = None, options: ExecOptions | None = None,
                 clock=time.time, sleep=None, notify: Callable[[str], None] = lambda m: None,
                 progress: Callable[[int], None] = lambda n: None, handle_signals: bool = False,
                 rules=None, http: str = "auto", ca_cert: str | None = None, **kw: Any) -> ExecutionSummary:
    """Run a saved plan (`plan`: SavedPlan or path) and return an ExecutionSummary.

    Without `execute` it is a dry run: the recording transport answers, a scratch ledger records,
    the workspace is left as it was. With it: `transport` (e.g. the in-process emulator's) or
    `base_url` (default Meta's), and the access token from `access_token`, `token_file` or
    MIGRATOR_ACCESS_TOKEN. `handle_signals`: SIGINT/SIGTERM finish in-flight requests and stop.
    `http` (when no `transport` is given): "auto" / "aiohttp" (default, the same client for Meta's
    https and plain-http rehearsals: graph/wire.py) or "httpx" (httpx's own stack, ~5x the CPU per
    send at 64 in flight; benchmarks/client.py).
    `ca_cert`: a certificate to trust besides the system's roots (a rehearsal emulator's throwaway
    one, `emulator serve --tls`); else env MIGRATOR_CA_CERT. Verification is never switched off.
    Other keyword arguments set ExecOptions fields (concurrency=64, rate=500, batches=1, wait=False...).
    """
    from migrator.graph import DEFAULT_BASE_URL, load_access_token

    opts = options or ExecOptions(execute=execute, **kw)
    opts.execute = execute
    check_receipt_margin(opts.receipt_margin, base_url or DEFAULT_BASE_URL)
    recorder = None
    if not execute:
        recorder = RecordingTransport()
        transport, token = recorder, "dry-run"
        # a dry run does not wait for the schedule: it looks at the plan as if every send were due
        loaded = _load_plan(ws, plan)
        plan = loaded
        last = max((b.not_before for b in loaded.batches), default=0)
        base_clock = clock
        clock = lambda: max(base_clock(), float(last) + 1)  # noqa: E731
        opts.wait = False
    else:
        token = access_token or load_access_token(token_file=token_file)

    async def main() -> ExecutionSummary:
        stop = asyncio.Event()
        signal_box: dict = {}
        loop = asyncio.get_running_loop()
        installed = []
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, _on_signal, stop, notify, sig, signal_box)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        base = base_url or DEFAULT_BASE_URL
        client = AsyncGraphClient(token, base_url=base, transport=transport, max_connections=max(1, opts.concurrency),
                                  retry=NO_RETRY, ca_cert=ca_cert, wire="httpx" if http == "httpx" else "aiohttp")
        try:
            return await execute_plan_async(ws, plan, client=client, opts=opts, clock=clock,
                                            sleep=sleep or asyncio.sleep, notify=notify, progress=progress,
                                            stop=stop, rules=rules, recorder=recorder, signal_box=signal_box)
        finally:
            await client.aclose()
            for sig in installed:
                loop.remove_signal_handler(sig)

    return run_loop(main())


def run_loop(coro):
    """Run the executor's coroutine on uvloop when it is installed (a dependency wherever it builds),
    else on asyncio's own loop. uvloop's loop and TLS transport are Cython: with 64 sends in flight
    over https they took about a tenth off the executor's CPU per send and the emulator's per
    request (benchmarks/client.py, docs/execute.md). Same semantics (signals, cancellation, the
    ssl module's verification); only the loop's own machinery is cheaper."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _on_signal(stop: asyncio.Event, notify, sig, box: dict) -> None:
    box.setdefault("signal", signal.Signals(sig).name)
    if not stop.is_set():
        notify(f"{signal.Signals(sig).name}: finishing the requests in flight, then stopping")
    stop.set()


__all__ = ["ExecOptions", "ExecutionSummary", "execute_plan", "execute_plan_async"]

