"""`migrator emulator serve`: the local Graph API for rehearsals, on loopback."""

from __future__ import annotations

import sys

import click

from migrator.cli import main
from migrator.cli.common import EXIT_INTERRUPTED, MigratorGroup, info, pass_app
from migrator.inputs import encoding_option


@main.group(cls=MigratorGroup)
def emulator() -> None:
    """A local Graph API (token listing + Marketing Messages) for rehearsals and tests."""


def _account_timezones(items) -> dict[str, str]:
    """--account-timezone ACT=ZONE options as {account id: zone}."""
    from migrator.errors import InputError

    tzs = {}
    for item in items:
        acct, _, tz = item.partition("=")
        acct = acct.strip().removeprefix("act_")
        if not acct.isdigit() or not tz.strip():
            raise InputError(f"--account-timezone {item!r}: expected ACT_ID=ZONE, e.g. 123=America/Los_Angeles")
        tzs[acct] = tz.strip()
    return tzs


def _check_emulator_outputs(app, *, webhooks, state, snapshot, reads) -> None:
    """--webhooks, --state and --snapshot are written by the emulator: never the workspace (the
    state store would add its tables to it, the webhooks would be appended to it) nor a file the
    command reads (a spec or fault profile would get JSON lines appended and be chmod 0600)."""
    from migrator.outputs import check_output
    from migrator.store.workspace import resolve_db_path

    workspace = resolve_db_path(app.db_path)
    state = state or (f"{webhooks}.state.sqlite" if webhooks else None)
    for path in (webhooks, state, snapshot):
        if path is not None:
            # force: appending to an existing webhooks file or reopening a state store is normal
            check_output(path, force=True, reads=[r for r in reads if r], workspace=workspace)



@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0 = any free port, printed at start).")
@click.option("--seed", default=None, type=int, help="Seed for every random choice (default 0).")
@click.option("--warmup", default=60.0, show_default=True, type=click.FloatRange(0),
              help="Seconds after campaign creation before sends succeed (2300012, then 2300041).")
@click.option("--faults", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Fault profile (TOML/JSON): latency, 5xx, timeouts, resets, throttling bursts.")
@click.option("--webhooks", type=click.Path(dir_okay=False), default=None,
              help="Append echo/delivery/read webhook events (JSONL) here.")
@click.option("--subscribers", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Subscribers JSONL (token, page_id, region, opted_out); default: the workspace's tokens.")
@click.option("--cost-per-message", "cost", default=1, show_default=True, type=click.IntRange(0),
              help="Minor currency units charged per delivered message.")
@click.option("--fcap-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of sends refused by frequency caps (2300042-2300044), seeded.")
@click.option("--virtual-clock", is_flag=True, help="Time moves only via POST /_emulator/clock.")
@click.option("--snapshot", type=click.Path(dir_okay=False), default=None,
              help="Load state from / save state to this JSON file (at exit and POST /_emulator/flush).")
@click.option("--assets", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Business assets fixture (TOML/JSON): permissions, ad accounts, Pages, terms (see "
                   "emulator/assets.py); default: the workspace's pages and the ad accounts its pages file and "
                   "latest plan name (business country, currency), everything else set up.")
@click.option("--state", type=click.Path(dir_okay=False), default=None,
              help="Durable state (SQLite: campaigns, sends, cadence, ids), kept across kills and restarts; "
                   "default WEBHOOKS.state.sqlite beside --webhooks, else in memory.")
@click.option("--public", is_flag=True, help="Allow a non-loopback --host.")
@click.option("--rules", "rules_path", metavar="FILE", type=click.Path(dir_okay=False), default=None,
              help="Rules override file: the emulator enforces the same limits as the toolkit.")
@click.option("--page-tokens", type=click.Path(dir_okay=False), default=None,
              help="page_id<TAB>token map (mode 0600): the listing accepts only each Page's own token.")
@click.option("--account-timezone", "account_timezones", multiple=True, metavar="ACT=ZONE",
              help="An ad account's time zone (daily budgets reset at its midnight); default UTC.")
@click.option("--http", "http_impl", type=click.Choice(["fast", "h11"]), default="fast", show_default=True,
              help="HTTP/1.1 protocol: fast (Content-Length bodies, one write per answer) or uvicorn's h11.")
@click.option("--account-calls-per-window", "account_calls", type=click.IntRange(1), default=None,
              help="Calls per ad account allowed in the rolling usage window; beyond it sends get 2300078 "
                   "(with remaining_seconds), other calls 80004 (default 1,000,000: no limit in practice).")
@click.option("--window-seconds", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Length of the rolling window the usage headers and the limits count over.")
@click.option("--tls", is_flag=True,
              help="Serve https with a throwaway self-signed certificate made now (key 0600 in a private "
                   "temporary directory, deleted at exit); clients trust it only with --ca-cert FILE.")
@encoding_option
@pass_app
def serve_cmd(app, host, port, seed, warmup, faults, webhooks, subscribers, cost, fcap_rate, virtual_clock,
              snapshot, assets, state, public, rules_path, page_tokens, account_timezones, http_impl, account_calls,
              window_seconds, tls, encoding):
    """Serve the emulator until Ctrl-C.

    \b
    Example:
      migrator --db demo.db emulator serve --port 8765 --seed 7 --warmup 5 --webhooks receipts.jsonl
      curl -s -X POST http://127.0.0.1:8765/v24.0/act_1/messages -H 'Authorization: Bearer x' \\
           -d message_id=... -d 'messenger_delivery_data={"subscription_token":"..."}' \\
           -d 'message={"text":"hi"}'
    """
    from migrator.emulator import build_emulator_app
    from migrator.errors import InputError

    from migrator.graph.wire import is_loopback_host

    if not is_loopback_host(host) and not public:
        raise InputError(f"--host {host} is not a loopback address",
                         hint="the emulator is for local rehearsals; add --public to expose it anyway")
    _check_emulator_outputs(app, webhooks=webhooks, state=state, snapshot=snapshot,
                            reads=(faults, subscribers, assets, rules_path, page_tokens))
    if assets is None and subscribers is None:
        # the workspace's pages as pages.csv and the latest plan describe them: a rehearsal's preflight
        # then judges the partner's own set-up, not a US/USD default
        from migrator.emulator.assets import assets_for_rehearsal

        assets = assets_for_rehearsal(app.workspace(create=False))
    asgi, loaded = build_emulator_app(subscribers=subscribers, workspace=lambda: app.workspace(create=False),
                                      faults=faults, seed=seed, virtual_clock=virtual_clock, rules=rules_path,
                                      page_tokens=page_tokens, assets=assets, warmup_seconds=warmup,
                                      webhooks_path=webhooks, snapshot_path=snapshot, cost_per_message=cost,
                                      fcap_rate=fcap_rate,
                                      state_path=state or (f"{webhooks}.state.sqlite" if webhooks else None),
                                      account_timezones=_account_timezones(account_timezones),
                                      window_seconds=window_seconds,
                                      **({"account_calls_per_window": account_calls} if account_calls else {}),
                                      encoding=encoding)
    from migrator.emulator.server import listen_socket, serve

    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         hint="pick another --port (0 = any free port)") from None
    bound = sock.getsockname()[1]
    if loaded.rejected:
        info(app, f"subscribers: {len(loaded.rejected)} bad line(s) skipped, first: "
                  f"line {loaded.rejected[0][0]}: {loaded.rejected[0][1]}")
    # stdout, always: scripts wait for this line to know the port
    st = asgi.state.emulator.state
    if tls:
        from migrator.emulator.tls import TLSSetupError, throwaway_certificate

        try:
            cert_cm = throwaway_certificate()
            cert = cert_cm.__enter__()
        except TLSSetupError as exc:
            sock.close()
            raise InputError(str(exc), hint="or serve plain http without --tls") from None
    click.echo(f"emulator listening on {'https' if tls else 'http'}://{host}:{bound} ({len(loaded.subscribers)} "
               f"subscribers, warm-up {warmup:g}s{', virtual clock' if virtual_clock else ''})")
    if tls:
        click.echo(f"throwaway certificate: {cert.cert_file} (trust it with --ca-cert {cert.cert_file}; "
                   f"deleted when the emulator stops)")
    info(app, f"state: {st.store.path if st.store.durable else 'in memory (lost at exit)'}"
              + (f"; kept {len(st.campaigns)} campaigns and {len(st.sends)} sends" if len(st.sends) or st.campaigns
                 else ""))
    sys.stdout.flush()
    try:
        if not tls:
            serve(asgi, sock, http=http_impl)
            return
        import signal

        # uvicorn re-raises SIGTERM once it has shut down; the default action would kill the process
        # before the finally below deletes the key: exit 143 through Python instead
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        try:
            serve(asgi, sock, http=http_impl, tls=cert)
        finally:
            cert_cm.__exit__(None, None, None)
    except KeyboardInterrupt:  # Ctrl-C is how it stops: its own word, not the group's about rollbacks
        click.echo("emulator stopped (Ctrl-C)", err=True)
        sys.exit(EXIT_INTERRUPTED)
