"""Preflight of a saved plan (or a plan spec): what to read, in which order, and the report.

`targets_from_plan` / `targets_from_spec` say which pages and ad accounts the plan uses (and what
it assumes about each: currency, declared business country, daily budgets and planned sends per
quarter hour); `run_preflight` reads each object once through the Graph client and applies the pure
checks of `checks.py`. Side effects: only the reads, and `store.save_preflight` when asked.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from migrator.errors import InputError, PlanError
from migrator.preflight import checks as C
from migrator.preflight import read as R

BUCKET = 900   # planned sends are grouped per quarter hour (zones differ from UTC by 15-min steps)


@dataclass
class AccountTarget:
    ad_account_id: str
    currencies: set[str] = field(default_factory=set)
    declared_country: str | None = None
    # (campaign key, daily budget, cost per message, [(epoch s, sends)]); None: no plan yet (a spec)
    daily: list[tuple[str, int, int, list[tuple[int, int]]]] | None = field(default_factory=list)


@dataclass
class PageTarget:
    page_id: str
    name: str | None
    ad_account_id: str


@dataclass
class Targets:
    source: str                    # plan | spec
    plan_id: str | None
    pages: list[PageTarget]
    accounts: dict[str, AccountTarget]


def _page_rows(ws) -> dict[str, tuple]:
    return {str(r[0]): r for r in ws.conn.execute(
        "SELECT page_id, name, business_country, ad_account_id, currency FROM pages")}


def targets_from_plan(ws, plan) -> Targets:
    """Every page and ad account of the plan's campaigns; planned sends from `plan_sends`."""
    rows = _page_rows(ws)
    pages: dict[str, PageTarget] = {}
    accounts: dict[str, AccountTarget] = {}
    for c in plan.campaigns:
        row = rows.get(str(c.page_id))
        pages.setdefault(str(c.page_id), PageTarget(str(c.page_id), row[1] if row else None, c.ad_account_id))
        a = accounts.setdefault(c.ad_account_id, AccountTarget(c.ad_account_id))
        a.currencies.add(c.currency)
        if row and row[2] and not a.declared_country:
            a.declared_country = str(row[2]).upper()
        if c.daily_budget:
            buckets = [(int(t), int(n)) for t, n in ws.conn.execute(
                f"SELECT (not_before / {BUCKET}) * {BUCKET}, COUNT(*) FROM plan_sends "
                "WHERE plan_id = ? AND campaign_key = ? GROUP BY 1", (plan.plan_id, c.key))]
            if not buckets and c.sends and c.first_send_at is not None:
                buckets = [(int(c.first_send_at), int(c.sends))]   # plan file without its workspace rows
            a.daily.append((c.key, int(c.daily_budget), int(c.cost_per_message), buckets))
    return Targets("plan", plan.plan_id, list(pages.values()), accounts)


def targets_from_spec(ws, spec) -> Targets:
    """Before a plan exists: the workspace's pages the spec would use, with the spec's accounts.

    Once an audit has run, only pages with subscribers to migrate (the ones a plan would send for).
    """
    rows = _page_rows(ws)
    audited = {str(pid): n for pid, n in ws.conn.execute("SELECT page_id, migrate FROM audit_pages")}
    if audited:
        rows = {pid: row for pid, row in rows.items() if audited.get(pid, 0) > 0}
    spec_accounts = {a.id: a for a in spec.ad_accounts}
    pages: list[PageTarget] = []
    accounts: dict[str, AccountTarget] = {}
    for pid, row in sorted(rows.items()):
        ps = spec.pages.get(pid)
        if ps is not None and ps.exclude:
            continue
        acct = (ps.ad_account if ps is not None and ps.ad_account else None) or \
            (str(row[3]).removeprefix("act_") if row[3] else None)
        if not acct:
            continue
        pages.append(PageTarget(pid, row[1], acct))
        a = accounts.setdefault(acct, AccountTarget(acct, daily=None))
        sa = spec_accounts.get(acct)
        cur = sa.currency if sa is not None else (row[4] or None)
        if cur:
            a.currencies.add(str(cur).upper())
        a.declared_country = a.declared_country or (sa.business_country if sa is not None else None) or \
            (str(row[2]).upper() if row[2] else None)
    return Targets("spec", None, pages, accounts)


def load_targets(ws, path: str | Path) -> Targets:
    """A saved plan (JSON) or a plan spec (TOML), told apart by content, not by name."""
    from migrator.plan import load_plan, load_spec

    p = Path(path)
    try:
        head = p.read_bytes()[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise PlanError(f"{p}: cannot read: {exc.strerror}",
                        hint="give a plan file (migrator plan -o PLAN.json) or a plan spec (TOML)") from None
    if head.startswith(b"{"):
        return targets_from_plan(ws, load_plan(p))
    return targets_from_spec(ws, load_spec(p))


# ---------------------------------------------------------------------- page -> token map
def load_page_tokens(path: str | Path) -> dict[str, str]:
    """`page_id<TAB>token` lines (the format `pull tokens` reads); blank and `#` lines skipped.

    The file must be private (mode 0600 or stricter): a token map readable by others is refused.
    Errors name the line, never its content (it holds a token).
    """
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the page token map: {exc.strerror}", path=str(p)) from None
    except UnicodeDecodeError:
        raise InputError("the page token map is not UTF-8 text", path=str(p)) from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"the page token map is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
                         path=str(p), hint=f"chmod 600 {p}")
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        page_id, sep, token = line.partition("\t")
        page_id, token = page_id.strip(), token.strip()
        if not sep or not page_id or any(c.isspace() for c in page_id + token) or not token:
            raise InputError("expected page_id<TAB>token (the page id, one tab, the token)", path=str(p),
                             line=n)
        if page_id in out:
            raise InputError(f"page {page_id} appears twice", path=str(p), line=n)
        out[page_id] = token
    return out


# ---------------------------------------------------------------------- the run
@dataclass
class PreflightReport:
    source: str
    plan_id: str | None
    checked_at: int
    base_url: str
    checks: list[C.CheckResult]
    pages: list[dict]
    unreachable: str | None = None     # Graph could not be reached at all: nothing was checked

    @property
    def counts(self) -> dict[str, int]:
        out = {C.PASS: 0, C.FAIL: 0, C.UNKNOWN: 0}
        for r in self.checks:
            out[r.status] += 1
        return out

    @property
    def ok(self) -> bool:
        return not any(r.status == C.FAIL for r in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok and not self.unreachable else 1

    def to_json(self) -> dict:
        return {"source": self.source, "plan_id": self.plan_id, "checked_at": self.checked_at,
                "base_url": self.base_url, "ok": self.ok, "unreachable": self.unreachable,
                "counts": self.counts, "pages": self.pages,
                "checks": [r.to_json() for r in self.checks]}


def run_preflight(targets: Targets, client, *, allowed_countries: frozenset[str],
                  page_tokens: dict[str, str] | None = None,
                  client_for_token: Callable[[str], object] | None = None,
                  base_url: str = "", clock: Callable[[], float] = time.time) -> PreflightReport:
    """Read every object once and check it. `client` carries the access token the executor uses;
    `client_for_token(token)` makes a client for one Page token (closed by the caller's factory)."""
    results: list[C.CheckResult] = []
    first = R.permissions(client)
    if first.unreachable:   # no connection: every read would wait out the same retries; say it once
        client = _Unreachable(first)
        client_for_token = lambda token: client  # noqa: E731
    perms = C.check_permissions(first)
    results.append(perms)
    reads: dict[str, C.Read] = {}
    by_account: dict[str, list[C.CheckResult]] = {}
    for act, a in sorted(targets.accounts.items()):
        acct = R.ad_account(client, act)
        reads[act] = acct
        rs = [C.check_access("ad_account_access", "ad_account", act, acct, "ad account"),
              C.check_account_status(act, acct),
              C.check_currency(act, acct, a.currencies)]
        rs += [C.check_budget_day(act, acct, a.daily),
               C.check_funding(act, acct),
               C.check_business_country(act, acct, a.declared_country, allowed_countries)]
        by_account[act] = rs
        results += rs
    pages_out: list[dict] = []
    for pt in targets.pages:
        pg = R.page(client, pt.page_id)
        token = (page_tokens or {}).get(pt.page_id)
        me = R.me(client_for_token(token)) if token is not None and client_for_token is not None else None
        rs = [C.check_access("page_access", "page", pt.page_id, pg, "page"),
              C.check_same_business(pt.page_id, pg, pt.ad_account_id, reads.get(pt.ad_account_id, C.Read())),
              C.check_page_country(pt.page_id, pg, allowed_countries),
              C.check_page_token(pt.page_id, me, map_given=page_tokens is not None),
              C.terms_of_service(pt.page_id)]
        results += rs
        mine = rs + by_account.get(pt.ad_account_id, []) + [perms]
        pages_out.append({"page_id": pt.page_id, "name": pt.name or (pg.data or {}).get("name"),
                          "ad_account_id": pt.ad_account_id, "state": C.page_state(mine),
                          "failed": [r.check for r in mine if r.status == C.FAIL],
                          "unknown": [r.check for r in mine if r.status == C.UNKNOWN and r.readable]})
    results.append(C.campaign_population())
    return PreflightReport(targets.source, targets.plan_id, int(clock()), base_url, results, pages_out,
                           unreachable=first.error if first.unreachable else None)


class _Unreachable:
    """Stands in for the client once Graph could not be reached: every read fails the same way."""

    def __init__(self, read: C.Read):
        self.read = read

    def call(self, *a, **kw):
        from migrator.graph import NetworkError

        raise NetworkError(self.read.error or "Graph unreachable", kind="connect")


def preflight(ws, path: str | Path, *, access_token: str | None = None, token_file: str | None = None,
              base_url: str | None = None, page_tokens_path: str | Path | None = None, transport=None,
              rules_path: str | None = None, encoding: str | None = None, retry=None, save: bool = True,
              clock: Callable[[], float] = time.time) -> PreflightReport:
    """The `migrator preflight` library call: targets of PLAN.json / SPEC.toml, the reads, the checks,
    and the results stored in the workspace (`save`). Tokens come from `access_token`, `token_file` or
    MIGRATOR_ACCESS_TOKEN; Page tokens only from the map file. No token is ever stored or printed."""
    from migrator.graph import DEFAULT_BASE_URL, GraphClient, load_access_token
    from migrator.preflight.store import save_preflight
    from migrator.rules import load_rules

    targets = load_targets(ws, path)
    page_tokens = load_page_tokens(page_tokens_path) if page_tokens_path is not None else None
    token = access_token or load_access_token(token_file=token_file)
    base = base_url or DEFAULT_BASE_URL
    opened: list = []

    def make(tok: str):
        g = GraphClient(tok, base_url=base, transport=transport, retry=retry)
        opened.append(g)
        return g

    try:
        report = run_preflight(targets, make(token), allowed_countries=load_rules(rules_path, encoding=encoding).mm_business_set(),
                               page_tokens=page_tokens, client_for_token=make, base_url=base, clock=clock)
    finally:
        for g in opened:
            g.close()
    if save:
        save_preflight(ws, report)
    return report
