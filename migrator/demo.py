"""`migrator demo`: the whole path on the bundled sample estate, against the in-process emulator.

sample -> ingest -> audit -> plan -> preflight -> execute (emulator, virtual clock: warm-up and send windows
pass in seconds, nothing leaves the machine) -> ingest the emulator's receipts -> reports.
Every step is the same library function the individual commands call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from migrator.errors import MigratorError


def sample_spec_path() -> Path:
    """The packaged worked plan spec (plans/sample.toml; migrator/plans/ inside the wheel)."""
    packaged = resources.files("migrator").joinpath("plans", "sample.toml")
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parent.parent / "plans" / "sample.toml"
    if source.is_file():
        return source
    raise MigratorError("the sample plan spec (plans/sample.toml) is missing from this installation",
                        hint="reinstall migrator (pip install .)")


@dataclass
class DemoResult:
    out_dir: Path
    db_path: Path
    plan_path: Path
    reports: dict[str, Path] = field(default_factory=dict)
    steps: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"out_dir": str(self.out_dir), "db": str(self.db_path), "plan": str(self.plan_path),
                "reports": {k: str(v) for k, v in self.reports.items()},
                "steps": [{"step": s, "result": r} for s, r in self.steps]}


# the estate plans/sample.toml is written for (its page ids and content)
SAMPLE = {"tokens": 2000, "pages": 12, "seed": 7}


def _preflight(ws, app, plan_path: Path, clock) -> str:
    """`migrator preflight` of the demo's plan against the emulator; its summary in one line."""
    from migrator.emulator import SyncEmulatorTransport
    from migrator.preflight import preflight

    transport = SyncEmulatorTransport(app)
    try:
        report = preflight(ws, plan_path, access_token="demo-emulator-token", base_url="http://emulator.local",
                           transport=transport, clock=clock)
    finally:
        transport.close()
    c = report.counts
    states: dict[str, int] = {}
    for p in report.pages:
        states[p["state"]] = states.get(p["state"], 0) + 1
    text = (f"{len(report.pages)} pages ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}): "
            f"{c['pass']} checks passed, {c['fail']} failed, {c['unknown']} unknown ("
            + ", ".join(dict.fromkeys(r.to_json()["title"] for r in report.checks if r.status == "unknown"))
            + ": not readable before a send, or no Page token map given)")
    failed = [f"{r.check} {r.subject}" for r in report.checks if r.status == "fail"]
    return text + (f"; failed: {', '.join(failed)}" if failed else "")


def run_demo(out_dir: str | Path = "demo", *, db_path: str | Path | None = None, warmup_seconds: float = 1800.0,
             clock: Callable[[], float] = time.time, say: Callable[[str], None] = lambda m: None) -> DemoResult:
    """Run the whole path into `out_dir`; the workspace is `db_path` or `out_dir/migration.db`.

    The demo's own workspace (`out_dir/migration.db`) is recreated each time so the demo always
    tells the same story; a workspace given with `db_path` is used as it is.
    """
    from migrator.audit import run_audit
    from migrator.emulator import EmulatorTransport, VirtualClock, build_emulator_app
    from migrator.execute import execute_plan, ingest_receipts
    from migrator.inventory import ingest_content, ingest_pages, ingest_tokens
    from migrator.plan import make_plan
    from migrator.report import make_report
    from migrator.sample import generate_sample
    from migrator.store import open_workspace
    from migrator.words import plural

    from migrator.outputs import OutputError, check_output

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory", hint="pass -o with a directory")
    check_output(out / "plan.json")  # e.g. -o naming a file, or a plan.json we did not write
    out.mkdir(parents=True, exist_ok=True)
    db = Path(db_path) if db_path else out / "migration.db"
    marker = out / ".migrator-demo"
    if not marker.exists():  # files the demo deletes and remakes, unless it made them itself
        for victim in ([] if db_path else [db]) + [out / "emulator_webhooks.jsonl"]:
            if victim.exists():
                raise OutputError(f"refusing to replace {victim}: `migrator demo` did not make it",
                                  hint="run the demo into a new -o directory")
    if not db_path:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    marker.write_text("a `migrator demo` directory: the demo replaces its migration.db\n")
    result = DemoResult(out_dir=out, db_path=db, plan_path=out / "plan.json")

    def step(name: str, text: str) -> None:
        result.steps.append((name, text))
        say(f"{name:10s} {text}")

    estate = out / "estate"
    generate_sample(estate, **SAMPLE)
    step("sample", f"{SAMPLE['tokens']:,} tokens on {SAMPLE['pages']} pages in every input format -> {estate}")

    ws = open_workspace(db)
    try:
        s = ingest_pages(ws, [estate / "pages.csv"], clock=clock)
        step("ingest", f"pages: {s.accepted} accepted")
        s = ingest_tokens(ws, [estate / "tokens.csv", estate / "tokens_listing.jsonl", estate / "webhooks.jsonl"],
                          clock=clock)
        step("ingest", f"tokens: {s.accepted:,} accepted, {s.duplicates} duplicate, {s.ignored} ignored, "
                       f"{s.rejected} rejected (kept in table rejects with file and line)"
                       + (f"; {s.warnings} kept without a bad field (e.g. an unknown time zone)" if s.warnings else ""))
        s = ingest_content(ws, [estate / "content_library.json", estate / "content_sends.jsonl"], clock=clock)
        step("ingest", f"content: {s.accepted} records, converted to MM form")

        audit = run_audit(ws, clock=clock).to_json()
        v = audit["verdicts"]
        step("audit", f"as of {audit['as_of']}: " + ", ".join(f"{k} {n:,}" for k, n in v.items()))

        plan = make_plan(ws, sample_spec_path(), out=result.plan_path, clock=clock)
        step("plan", f"{plural(len(plan.campaigns), 'campaign')}, {plural(plan.sends, 'send')} in "
                     f"{plural(len(plan.batches), 'batch')} -> {result.plan_path}")

        receipts = out / "emulator_webhooks.jsonl"
        receipts.unlink(missing_ok=True)
        vclock = VirtualClock(clock())
        from migrator.emulator.assets import assets_from_workspace

        # the emulator holds the businesses, ad accounts and Pages as pages.csv describes them
        app, _ = build_emulator_app(subscribers=estate / "subscribers.jsonl", seed=SAMPLE["seed"],
                                    assets=assets_from_workspace(ws, plan), warmup_seconds=warmup_seconds,
                                    clock=vclock, webhooks_path=receipts)
        step("preflight", _preflight(ws, app, result.plan_path, clock))

        async def virtual_sleep(seconds: float) -> None:
            vclock.advance(seconds)
            await asyncio.sleep(0)

        summary = execute_plan(ws, plan, execute=True, transport=EmulatorTransport(app),
                               base_url="http://emulator.local", access_token="demo-emulator-token",
                               clock=vclock, sleep=virtual_sleep, concurrency=16)
        app.state.emulator.close()  # flushes the webhook file
        waited = vclock() - clock()
        step("execute", f"{summary.outcome}: {summary.sent:,} sent, {summary.skipped} skipped, "
                        f"{summary.failed} failed, {summary.unknown} unknown against the emulator "
                        f"({waited / 3600:.1f} h of warm-up and send windows on a virtual clock)")

        s = ingest_receipts(ws, [receipts])
        step("receipts", f"{s.accepted:,} echo/delivery/read webhooks ingested")

        for kind in ("audit", "readiness", "execution"):
            made = make_report(ws, kind, out=out / f"{kind}.html", clock=clock)
            result.reports[kind] = made.paths[0]
        step("reports", ", ".join(str(p) for p in result.reports.values()))
    finally:
        ws.close()
    return result
