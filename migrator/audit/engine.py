"""Run the dry-run audit over a workspace: set-based SQL around a small Python decision table.

Why this shape: 10M tokens must audit in seconds on 2 cores. Region resolution runs in
Python once per distinct time zone and explicit country (a few hundred), the verdict rules
once per (region, business class) pair, into small temp tables keyed by integers;
everything per token is one INSERT ... SELECT with B-tree lookups and CASE, plus a few
set-based statements over the duplicate groups and the aggregate. The audit never calls the network and
replaces the previous run's detail rows in one transaction (a failed run leaves the
previous results intact).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable

from migrator.audit.findings import CONTENT, FINDINGS, PAGE, TOKEN, decode, mask, of_scope
from migrator.audit.decide import (BLOCKED, MIGRATE, OPTED_OUT, REVIEW, STAY, VERDICTS, Context,
                                   decide)
from migrator.countries import normalize_country
from migrator.regions import resolve_region
from migrator.rules import Rules, load_rules

CONTENT_OUTCOMES = ("exact", "lossy", "needs_edit", "unsupported")
PAGE_STATUSES = ("ready", "needs_action", "blocked")

CACHE_KIB = 65536
TEMP_TABLES = ("_audit_zone_region", "_audit_country_region", "_audit_page_business", "_audit_decision",
               "_audit_shared_person", "_audit_person_primary", "_audit_counts")


@dataclass
class AuditResult:
    """What one audit run found; `to_json()` is the `migrator audit --json` contract."""

    run_id: int
    as_of: date
    rules_version: str
    rules_fingerprint: str
    tokens: int
    recipients: int
    verdicts: dict[str, int]
    findings: dict[str, int]
    pages: dict[str, int]
    contents: dict[str, int]
    options: dict[str, Any]
    region_sources: dict[str, int]
    countdown_days: int | None
    seconds: float
    rn_discontinuation: date | None = None
    rn_exempt_geos: list[str] = field(default_factory=list)
    catalogue: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "rules_version": self.rules_version,
            "tokens": self.tokens,
            "recipients": self.recipients,
            "verdicts": self.verdicts,
            "findings": self.findings,
            "pages": self.pages,
            "contents": self.contents,
            "run_id": self.run_id,
            "rules_fingerprint": self.rules_fingerprint,
            "options": self.options,
            "region_sources": self.region_sources,
            "rn_discontinuation": self.rn_discontinuation.isoformat() if self.rn_discontinuation else None,
            "rn_discontinuation_countdown_days": self.countdown_days,
        }


def _midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


def today_utc(clock: Callable[[], float] = time.time) -> date:
    return datetime.fromtimestamp(clock(), tz=timezone.utc).date()


def _business_of_key(key: str) -> str | None:
    if key == "?":
        return None
    try:
        return normalize_country(key)
    except ValueError:
        return None


def _cutoff_when(cutoff: date, as_of: date) -> str:
    """'12 days after 2026-01-29', '1 day after ...', 'the as-of date', '293 days before ...'."""
    n = (cutoff - as_of).days
    if n == 0:
        return f"on the as-of date, {as_of.isoformat()}"
    word = "day" if abs(n) == 1 else "days"
    return f"{abs(n):,} {word} {'after' if n > 0 else 'before'} {as_of.isoformat()}"


def render_catalogue(rules: Rules, as_of: date) -> list[dict[str, Any]]:
    """Every finding with its explanation and remedy rendered for this run's rules and date."""
    cutoff = rules.rn_discontinuation.value
    ctx = {
        "as_of": as_of.isoformat(),
        "cutoff": cutoff.isoformat(),
        "days": max((cutoff - as_of).days, 0),
        "cutoff_when": _cutoff_when(cutoff, as_of),
        "mm_excluded": ", ".join(rules.mm_recipient_exclusions.value),
        "exempt": ", ".join(rules.rn_exempt_geos.value),
        "n_business": len(rules.mm_business_countries.value),
        "expiry_ended": rules.rn_token_expiry_ended.value.isoformat(),
        "rn_hours": rules.rn_cadence_hours.value,
        "mm_hours": rules.mm_cadence_hours.value,
        "mm_launch": rules.mm_launch.value.isoformat(),
        "mm_text": rules.mm_text_max_chars.value,
        "mm_buttons": rules.mm_buttons_max.value,
    }
    return [{
        "code": f.code, "scope": f.scope, "bit": f.bit, "severity": f.severity,
        "explanation": f.explanation.format(**ctx), "remedy": f.remedy.format(**ctx),
        "sources": f.sources(rules),
    } for f in FINDINGS]


def run_audit(ws, *, as_of: date | None = None, rules: Rules | None = None,
              clock: Callable[[], float] = time.time) -> AuditResult:
    """Audit every token, page and content of the workspace `ws`.

    `as_of` defaults to today (UTC, from `clock`). Results replace the previous run's
    detail tables; `audit_runs` keeps the history.
    """
    rules = rules or load_rules()
    as_of = as_of or today_utc(clock)
    started = clock()
    conn = ws.conn
    ctx = Context.build(rules, as_of)
    options = {
        "rn_exemption_basis": rules.rn_exemption_basis.value,
        "eu_definition": rules.eu_definition.value,
        "mm_cadence_hours": rules.mm_cadence_hours.value,
    }
    catalogue = render_catalogue(rules, as_of)
    # a bigger page cache for the run (64 MB, bounded): the token insert and the grouping
    # touch every page of tokens and audit_tokens; restored afterwards
    old_cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
    try:
        return _run(ws, rules, as_of, ctx, options, catalogue, started, clock)
    finally:
        conn.execute(f"PRAGMA cache_size = {old_cache}")


def _run(ws, rules, as_of, ctx, options, catalogue, started, clock) -> AuditResult:
    try:
        with ws.transaction() as conn:
            run_id = conn.execute(
                "INSERT INTO audit_runs (as_of, started_at, status, rules_version, rules_fingerprint,"
                " rules_origins, options) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (as_of.isoformat(), int(started), rules.version, rules.fingerprint(),
                 json.dumps(rules.origins()), json.dumps(options)),
            ).lastrowid
            for table in ("audit_tokens", "audit_pages", "audit_contents"):
                conn.execute(f"DELETE FROM {table}")  # no WHERE: SQLite's fast truncate
            n_business = _build_decisions(conn, ctx)
            _insert_tokens(conn, run_id, rules, as_of, n_business)
            _mark_page_mismatch(conn)
            _mark_duplicates(conn)
            _aggregate(conn)
            _insert_contents(conn, run_id)
            page_status = _insert_pages(conn, run_id, ctx.mm_business)
            result = _summarise(conn, run_id, rules, as_of, options, page_status, catalogue)
            result.seconds = clock() - started
            conn.executemany(
                "INSERT INTO audit_run_findings (run_id, code, scope, bit, severity, explanation,"
                " remedy, sources, count) VALUES (?,?,?,?,?,?,?,?,?)",
                [(run_id, c["code"], c["scope"], c["bit"], c["severity"], c["explanation"],
                  c["remedy"], json.dumps(c["sources"]), result.findings.get(c["code"], 0))
                 for c in catalogue])
            conn.execute(
                "UPDATE audit_runs SET status='done', finished_at=?, tokens=?, summary=?, results_digest=?"
                " WHERE id=?", (int(clock()), result.tokens, json.dumps(result.to_json()),
                                json.dumps([list(r) for r in conn.execute(_COUNTS_SUMS)]), run_id))
            _drop_temp(conn)
    finally:
        _drop_temp(ws.conn)
    return result


def _drop_temp(conn) -> None:
    for t in TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{t}")


def _build_decisions(conn, ctx: Context) -> int:
    """Resolve each distinct region once, decide each (region, business) pair once.

    Temp tables, all keyed for one B-tree lookup per token:
      _audit_zone_region (timezone -> region id), _audit_country_region (explicit country ->
      region id, and the id used when MM refused the token with 2300032),
      _audit_page_business (page -> business id), _audit_decision (region id * n_business +
      business id -> verdict, flags, region columns).
    """
    tzs = [r[0] for r in conn.execute("SELECT DISTINCT timezone FROM tokens") if r[0]]
    raw_countries = [r[0] for r in conn.execute("SELECT DISTINCT country FROM tokens") if r[0]]
    pages = conn.execute("SELECT page_id, business_country FROM pages").fetchall()
    excl = ctx.mm_excluded
    regions = [resolve_region(None, None, None, excl),             # region_id 0: unknown
               resolve_region(None, None, "wrong_region", excl)]   # region_id 1: MM said excluded
    zone_region, country_region = [], []
    for tz in tzs:
        zone_region.append((tz, len(regions)))
        regions.append(resolve_region(None, tz, None, excl))
    for raw in raw_countries:
        if _business_of_key(raw) is None:  # not a country: the time zone decides
            continue
        country_region.append((raw, len(regions), len(regions) + 1))
        regions.append(resolve_region(raw, None, None, excl))
        regions.append(resolve_region(raw, None, "wrong_region", excl))
    businesses: list[str | None] = [None]                           # business_id 0: unknown
    business_id_of: dict[str, int] = {}
    page_business = []
    for page_id, bc in pages:
        code = _business_of_key(bc) if bc else None
        if code is not None and code not in business_id_of:
            business_id_of[code] = len(businesses)
            businesses.append(code)
        page_business.append((page_id, business_id_of.get(code, 0) if code else 0))
    n_business = len(businesses)
    # a decision depends on the business only through its class (MM country? RN-exempt?)
    klass = [None if bc is None else (bc in ctx.mm_business, bc in ctx.rn_exempt)
             for bc in businesses]
    decision_rows = []
    for region_id, res in enumerate(regions):
        cands = ",".join(res.candidates) if res.candidates else None
        by_class: dict = {}
        for business_id, bc in enumerate(businesses):
            decided = by_class.get(klass[business_id])
            if decided is None:
                decided = by_class[klass[business_id]] = decide(res, bc, ctx)
            detail = decided.detail
            if detail is None and res.shared:
                # information, not ambiguity: zone1970.tab groups clocks, not people
                detail = "same clock as " + ", ".join(res.shared) + " (information only)"
            decision_rows.append((region_id * n_business + business_id, decided.verdict,
                                  int(decided.certain), decided.flags, detail,
                                  res.source, res.country, cands))
    conn.execute("CREATE TEMP TABLE _audit_zone_region (tz TEXT PRIMARY KEY,"
                 " region_id INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE _audit_country_region (country TEXT PRIMARY KEY, region_id INTEGER NOT NULL,"
                 " region_if_refused INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE _audit_page_business (page_id TEXT PRIMARY KEY,"
                 " business_id INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE _audit_decision (id INTEGER PRIMARY KEY, verdict TEXT, certain INTEGER,"
                 " flags INTEGER, detail TEXT, source TEXT, region TEXT, candidates TEXT)")
    conn.executemany("INSERT INTO _audit_zone_region VALUES (?,?)", zone_region)
    conn.executemany("INSERT INTO _audit_country_region VALUES (?,?,?)", country_region)
    conn.executemany("INSERT INTO _audit_page_business VALUES (?,?)", page_business)
    conn.executemany("INSERT INTO _audit_decision VALUES (?,?,?,?,?,?,?,?)", decision_rows)
    return n_business


def _insert_tokens(conn, run_id: int, rules: Rules, as_of: date, n_business: int) -> None:
    as_of_ts = _midnight(as_of)
    clear = mask("MM_CADENCE_12H", "RN_CADENCE_48H", "RN_DISCONTINUATION_COUNTDOWN",
                 "RN_DISCONTINUED", "RN_ONLY_UNTIL_CUTOFF")
    # what Meta told the executor about a token lives in mm_feedback (execute's table), not tokens.
    # A logged stop webhook that no newer opt-in or resume released counts too, whatever CSV export
    # was ingested after it (the inventory ranks a snapshot as observed at its ingest; the export's
    # own date is unknown): the send-time check holds such a token (`execute.sendable.stopped_sql`),
    # so the audit says opted out rather than planning and costing a send that will be skipped.
    # Set-based: the stops are collected once, not looked up per token.
    conn.execute("DROP TABLE IF EXISTS temp._audit_stopped")
    conn.execute("CREATE TEMP TABLE _audit_stopped (token TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute("INSERT OR IGNORE INTO temp._audit_stopped SELECT ev.token FROM main.token_events ev"
                 " WHERE ev.kind = 'stop' AND NOT EXISTS (SELECT 1 FROM main.token_events r"
                 " WHERE r.token = ev.token AND r.kind IN ('optin', 'resume') AND r.ts_ms > ev.ts_ms)")
    opted = ("(t.status = 'stopped' OR feedback.state = 'opted_out'"
             " OR t.token IN (SELECT token FROM temp._audit_stopped))")
    # only Meta's own refusal makes a token dead; a passed legacy expiry is a warning (tokens
    # stopped expiring on rn_token_expiry_ended, whether older ones revived is undocumented,
    # and an attempt that fails with 2300037 costs nothing and teaches mm_feedback)
    expired = "(feedback.state IN ('expired', 'invalid'))"
    legacy = f"(t.token_expiry <= {as_of_ts})"
    daily = int(as_of >= rules.rn_cadence_change.value)
    conn.execute(f"""
        INSERT INTO audit_tokens (token_id, run_id, page_id, verdict, certain, region,
                                  region_source, candidates, detail, flags, is_primary)
        SELECT t.id, {run_id}, t.page_id,
               CASE WHEN {opted} THEN '{OPTED_OUT}' WHEN {expired} THEN '{BLOCKED}'
                    ELSE decision.verdict END,
               CASE WHEN {opted} OR {expired} THEN 1 ELSE decision.certain END,
               decision.region, decision.source, decision.candidates,
               CASE WHEN {opted} OR {expired} THEN NULL ELSE decision.detail END,
               CASE WHEN {opted} THEN {mask('OPTED_OUT')}
                    WHEN {expired} THEN (decision.flags & ~{clear}) | {mask('TOKEN_EXPIRED')}
                    ELSE decision.flags
                       | (CASE WHEN {legacy} THEN {mask('LEGACY_EXPIRY_PASSED')} ELSE 0 END)
                       | (CASE WHEN {daily} AND decision.verdict = '{STAY}' AND t.frequency = 'DAILY'
                               THEN {mask('RN_DAILY_FREQUENCY_LOST')} ELSE 0 END)
               END,
               1
        FROM tokens t
        LEFT JOIN mm_feedback feedback ON feedback.token_id = t.id
        LEFT JOIN _audit_page_business page_business ON page_business.page_id = t.page_id
        LEFT JOIN _audit_country_region country_region ON country_region.country = t.country
        LEFT JOIN _audit_zone_region zone_region ON zone_region.tz = t.timezone
        JOIN _audit_decision decision ON decision.id = (CASE
                WHEN country_region.region_id IS NOT NULL THEN
                     (CASE WHEN feedback.state = 'wrong_region' THEN country_region.region_if_refused
                           ELSE country_region.region_id END)
                WHEN feedback.state = 'wrong_region' THEN 1
                WHEN zone_region.region_id IS NOT NULL THEN zone_region.region_id
                ELSE 0 END) * {n_business} + coalesce(page_business.business_id, 0)
        ORDER BY t.id
    """)


def _mark_page_mismatch(conn) -> None:
    """Tokens Meta said belong to another page (2300005, confirmed by a success on their page): review.

    Not `blocked` and not invalid: the token is probably alive, filed under the wrong page; the
    detail names the page it is filed under so the partner can look for the right one.
    """
    conn.execute(f"""
        UPDATE audit_tokens SET
               verdict = CASE WHEN verdict = '{BLOCKED}' THEN verdict ELSE '{REVIEW}' END,
               certain = CASE WHEN verdict = '{BLOCKED}' THEN certain ELSE 0 END,
               flags = flags | {mask('TOKEN_PAGE_MISMATCH')},
               detail = 'page mismatch: filed under page ' || coalesce(page_id, '?')
                        || '; Meta says the token belongs to another page (2300005)'
        WHERE verdict <> '{OPTED_OUT}'
          AND token_id IN (SELECT token_id FROM mm_feedback WHERE state = 'page_mismatch')""")


def _mark_duplicates(conn) -> None:
    """One token per person and page is primary: the best verdict, then the oldest token.

    Only people with several tokens are ranked: their groups come from one scan of the
    `tokens_person` index, then each group's best token is a MIN over (verdict rank, id)
    packed in one integer, read in group order (no window sort over the groups' tokens); the
    others are the secondary tokens. Token ids are rowids, far below 2**60.
    """
    rank = (f"CASE a.verdict WHEN '{MIGRATE}' THEN 0 WHEN '{STAY}' THEN 1"
            f" WHEN '{REVIEW}' THEN 2 WHEN '{BLOCKED}' THEN 3 ELSE 4 END")
    conn.execute("CREATE TEMP TABLE _audit_shared_person AS SELECT page_id, psid FROM tokens"
                 " WHERE psid IS NOT NULL GROUP BY page_id, psid HAVING COUNT(*) > 1")
    conn.execute(f"""
        CREATE TEMP TABLE _audit_person_primary AS
        SELECT g.page_id, g.psid, min(({rank}) * {1 << 60} + a.token_id) % {1 << 60} AS primary_id
        FROM _audit_shared_person g  -- CROSS JOIN fixes the order: the few groups drive lookups
        CROSS JOIN tokens t ON t.page_id = g.page_id AND t.psid = g.psid
        CROSS JOIN audit_tokens a ON a.token_id = t.id
        GROUP BY g.rowid
    """)
    conn.execute(f"UPDATE audit_tokens SET is_primary = 0,"
                 f" flags = flags | {mask('DUPLICATE_PERSON_TOKEN')}"
                 f" WHERE token_id IN (SELECT t.id FROM _audit_person_primary g"
                 f" CROSS JOIN tokens t ON t.page_id = g.page_id AND t.psid = g.psid"
                 f" WHERE t.id <> g.primary_id)")


def _aggregate(conn) -> None:
    """Count tokens per (page, verdict, flags, is_primary, region_source) into `_audit_counts`,
    with the sums of the run's results digest (`runs.results_sums`) beside each count.

    One pass feeds the page rollup, the summary and the digest the plan's fingerprint reads.
    An UPSERT into a small keyed table instead of GROUP BY: GROUP BY sorts every token row
    (spilling to temp files beyond the cache, which made 3M cost far more than 3x 1M); the
    UPSERT does one lookup in a table of a few thousand rows per token, so time stays linear.
    """
    conn.execute("CREATE TEMP TABLE _audit_counts (page_id TEXT NOT NULL, verdict TEXT NOT NULL,"
                 " flags INTEGER NOT NULL, is_primary INTEGER NOT NULL,"
                 " region_source TEXT NOT NULL, n INTEGER NOT NULL, sum_id INTEGER NOT NULL,"
                 " sum_certain_id INTEGER NOT NULL, sum_region INTEGER NOT NULL,"
                 " PRIMARY KEY (page_id, verdict, flags, is_primary, region_source)) WITHOUT ROWID")
    conn.execute("INSERT INTO _audit_counts SELECT coalesce(page_id, ''), verdict, flags, is_primary,"
                 " region_source, 1, token_id, token_id * certain,"
                 " token_id * LENGTH(IFNULL(region, '')) + UNICODE(IFNULL(region, ' '))"
                 " FROM audit_tokens WHERE true ON CONFLICT DO UPDATE SET n = n + 1,"
                 " sum_id = sum_id + excluded.sum_id, sum_certain_id = sum_certain_id + excluded.sum_certain_id,"
                 " sum_region = sum_region + excluded.sum_region")


# runs.results_sums, from the counts: the same integers summed in another order (exact, so
# TOTAL() gives the same floats as the scan of audit_tokens would)
_COUNTS_SUMS = """
SELECT verdict, SUM(n), TOTAL(sum_id), TOTAL(sum_id * is_primary), TOTAL(sum_certain_id),
       TOTAL(n * (flags % 1000003)), TOTAL(sum_region), TOTAL(n * LENGTH(page_id))
FROM _audit_counts GROUP BY verdict ORDER BY verdict
"""


def _insert_contents(conn, run_id: int) -> None:
    m = {c: mask(c) for c in ("CONTENT_LOSSY", "CONTENT_NEEDS_EDIT", "CONTENT_UNSUPPORTED",
                                "CONTENT_NOT_CONVERTED")}
    conn.execute(f"""
        INSERT INTO audit_contents (content_id, run_id, page_id, outcome, uses, flags)
        SELECT id, {run_id}, page_id, outcome, uses,
               CASE outcome WHEN 'exact' THEN 0 WHEN 'lossy' THEN {m['CONTENT_LOSSY']}
                    WHEN 'needs_edit' THEN {m['CONTENT_NEEDS_EDIT']}
                    WHEN 'unsupported' THEN {m['CONTENT_UNSUPPORTED']}
                    ELSE {m['CONTENT_NOT_CONVERTED']} END
        FROM contents
    """)


def page_status(row: dict[str, Any]) -> tuple[str, int, list[str]]:
    """(status, page flags, reasons) for one page's aggregate row.

    blocked      - tokens that neither path reaches, and the page cannot fix that itself
                   (business country outside MM) or nothing else on the page is reachable;
    needs_action - anything a person must do: missing ad account / business country /
                   page row, content to edit, tokens to review, blocked tokens, or tokens
                   on RN that lose it at the discontinuation (AT_RISK_TOKENS);
    ready        - none of the above. A business country outside MM is a reason only when
                   some token needs MM (blocked, review or at risk); a page whose
                   subscribers all stay on RN is ready.
    """
    flags = 0
    bc, ad = row["business_country"], row["ad_account_id"]
    if not row["ingested"]:
        flags |= mask("PAGE_NOT_INGESTED")
    if not bc:
        flags |= mask("PAGE_BUSINESS_COUNTRY_UNKNOWN")
    elif not row["business_supported"]:
        flags |= mask("PAGE_BUSINESS_COUNTRY_UNSUPPORTED")
    if not ad and (row["migrate"] + row["review"]) > 0:
        flags |= mask("PAGE_NO_AD_ACCOUNT")
    if row["contents_needing_work"] > 0:
        flags |= mask("PAGE_CONTENT_NEEDS_WORK")
    reasons = decode(flags, PAGE)
    needs_mm = row["blocked"] + row["review"] + row.get("at_risk", 0)
    if "PAGE_BUSINESS_COUNTRY_UNSUPPORTED" in reasons and not needs_mm:
        reasons.remove("PAGE_BUSINESS_COUNTRY_UNSUPPORTED")
    if row.get("at_risk"):
        reasons.append("AT_RISK_TOKENS")
    if row["blocked"]:
        reasons.append("BLOCKED_TOKENS")
    if row["review"]:
        reasons.append("REVIEW_TOKENS")
    reachable = row["migrate"] + row["stay_on_rn"] + row["review"]
    if row["blocked"] and (flags & mask("PAGE_BUSINESS_COUNTRY_UNSUPPORTED") or reachable == 0):
        return "blocked", flags, reasons
    if reasons:
        return "needs_action", flags, reasons
    return "ready", flags, reasons


def _insert_pages(conn, run_id: int, mm_business: frozenset[str]) -> dict[str, int]:
    rows = conn.execute("""
        WITH agg AS (
            SELECT page_id, SUM(n) AS tokens,
                   SUM(n * (verdict = 'migrate')) AS migrate,
                   SUM(n * (verdict = 'stay_on_rn')) AS stay_on_rn,
                   SUM(n * (verdict = 'blocked')) AS blocked,
                   SUM(n * (verdict = 'opted_out')) AS opted_out,
                   SUM(n * (verdict = 'review')) AS review,
                   SUM(n * (verdict = 'stay_on_rn' AND (flags & ?) != 0)) AS at_risk
            FROM _audit_counts WHERE page_id <> '' GROUP BY page_id),
        cw AS (
            SELECT page_id, COUNT(*) AS n FROM contents
            WHERE outcome IN ('needs_edit', 'unsupported') GROUP BY page_id),
        ids AS (
            SELECT page_id FROM pages UNION SELECT page_id FROM agg WHERE page_id IS NOT NULL)
        SELECT ids.page_id, p.page_id IS NOT NULL, nullif(p.business_country, ''),
               nullif(p.ad_account_id, ''),
               coalesce(agg.tokens, 0), coalesce(agg.migrate, 0), coalesce(agg.stay_on_rn, 0),
               coalesce(agg.blocked, 0), coalesce(agg.opted_out, 0), coalesce(agg.review, 0),
               coalesce(cw.n, 0), coalesce(agg.at_risk, 0)
        FROM ids LEFT JOIN pages p ON p.page_id = ids.page_id
        LEFT JOIN agg ON agg.page_id = ids.page_id
        LEFT JOIN cw ON cw.page_id = ids.page_id
    """, (mask("RN_DISCONTINUATION_COUNTDOWN"),)).fetchall()
    out = []
    counts = dict.fromkeys(PAGE_STATUSES, 0)
    for (pid, ingested, bc, ad, tokens, mig, stay, blk, opt, rev, cw, risk) in rows:
        row = {"ingested": ingested, "business_country": bc, "ad_account_id": ad,
               "business_supported": _business_of_key(bc) in mm_business if bc else False,
               "migrate": mig, "stay_on_rn": stay, "blocked": blk, "review": rev,
               "contents_needing_work": cw, "at_risk": risk}
        status, flags, reasons = page_status(row)
        counts[status] += 1
        out.append((pid, run_id, status, json.dumps(reasons), bc, ad, tokens, mig, stay, blk,
                    opt, rev, cw, flags))
    conn.executemany("INSERT INTO audit_pages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", out)
    return counts


def _summarise(conn, run_id, rules, as_of, options, pages, catalogue) -> AuditResult:
    verdicts = dict.fromkeys(VERDICTS, 0)
    findings = {c["code"]: 0 for c in catalogue}
    sources: dict[str, int] = {}
    tokens = recipients = 0
    token_f = of_scope(TOKEN)
    for verdict, flags, primary, source, n in conn.execute(
            "SELECT verdict, flags, is_primary, region_source, n FROM _audit_counts"):
        tokens += n
        recipients += n if primary else 0
        verdicts[verdict] += n
        sources[source] = sources.get(source, 0) + n
        for f in token_f:
            if flags & f.mask:
                findings[f.code] += n
    for scope, table in ((PAGE, "audit_pages"), (CONTENT, "audit_contents")):
        for flags, n in conn.execute(f"SELECT flags, COUNT(*) FROM {table} GROUP BY flags"):
            for f in of_scope(scope):
                if flags & f.mask:
                    findings[f.code] += n
    contents = dict.fromkeys(CONTENT_OUTCOMES, 0)
    contents["not_converted"] = 0
    for outcome, n in conn.execute("SELECT outcome, COUNT(*) FROM audit_contents GROUP BY outcome"):
        contents[outcome if outcome in CONTENT_OUTCOMES else "not_converted"] += n
    cutoff = rules.rn_discontinuation.value
    return AuditResult(
        run_id=run_id, as_of=as_of, rules_version=rules.version,
        rules_fingerprint=rules.fingerprint(), tokens=tokens, recipients=recipients,
        verdicts=verdicts, findings=findings, pages=pages, contents=contents, options=options,
        region_sources=sources, countdown_days=(cutoff - as_of).days if as_of < cutoff else None,
        seconds=0.0, catalogue=catalogue, rn_discontinuation=cutoff,
        rn_exempt_geos=list(rules.rn_exempt_geos.value))
