"""Ingest pages (page_id, name, business_country, ad_account_id, currency) from CSV."""

from __future__ import annotations

import io
import time
from pathlib import Path

from migrator.errors import InputError
from migrator.inventory.ingest import Clock, Run, record_failed_run
from migrator.inventory.sources import file_sha256, open_text
from migrator.inventory.summary import FileSummary, IngestSummary
from migrator.inventory.tokens import BadValue, csv_records, detect_delimiter
from migrator.inventory.tokens import _country as country_cell    # ISO country, or BadValue
from migrator.inventory.tokens import _page_id as page_id_cell    # a Page id's digits, or BadValue
from migrator.inventory.tokens import _s as text_cell             # stripped text; blank is None
from migrator.store import Workspace

PAGE_COLUMNS = ("page_id", "name", "business_country", "ad_account_id", "currency")

UPSERT_PAGE = (
    "INSERT INTO pages (page_id, name, business_country, ad_account_id, currency, updated_at, run_id)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT(page_id) DO UPDATE SET"
    " name=coalesce(excluded.name, name), business_country=coalesce(excluded.business_country, business_country),"
    " ad_account_id=coalesce(excluded.ad_account_id, ad_account_id), currency=coalesce(excluded.currency, currency),"
    " updated_at=excluded.updated_at, run_id=excluded.run_id"
    " WHERE (name, business_country, ad_account_id, currency) IS NOT"
    " (coalesce(excluded.name, name), coalesce(excluded.business_country, business_country),"
    " coalesce(excluded.ad_account_id, ad_account_id), coalesce(excluded.currency, currency))"
)


def parse_page_row(cells: dict[str, str]) -> tuple:
    """One row's cells by column name -> the `pages` values (PAGE_COLUMNS order), or BadValue."""
    ad_account_id = text_cell(cells.get("ad_account_id"))
    if ad_account_id is not None:
        ad_account_id = ad_account_id[4:] if ad_account_id.lower().startswith("act_") else ad_account_id
        if not ad_account_id.isdigit():
            raise BadValue(f"ad_account_id {cells.get('ad_account_id')!r} is not an ad account id "
                           "(digits, optionally act_)")
    currency = text_cell(cells.get("currency"))
    if currency is not None:
        if not (len(currency) == 3 and currency.isalpha()):
            raise BadValue(f"currency {currency!r} is not an ISO 4217 code such as USD")
        currency = currency.upper()
    return (page_id_cell(cells.get("page_id"), "page_id", required=True), text_cell(cells.get("name")),
            country_cell(cells.get("business_country")), ad_account_id, currency)


def ingest_pages(ws: Workspace, paths, *, strict: bool = False, clock: Clock = time.time,
                 encoding: str | None = None, delimiter: str | None = None) -> IngestSummary:
    """Ingest page CSV files; only page_id is required, empty cells keep what is known.

    The delimiter is `delimiter`, or the one the header line uses (, ; TAB |).
    """
    summary = IngestSummary()
    for path in map(str, paths):
        try:
            with ws.transaction(), open_text(path, encoding=encoding) as f:
                run = Run(ws, kind="pages", path=path, fmt="csv", sha=file_sha256(path), clock=clock)
                _ingest_page_rows(ws, run, _page_reader(f, delimiter), strict=strict, now=int(clock()))
                summary.files.append(run.finish())
        except InputError:
            if strict:
                record_failed_run(ws, kind="pages", path=path, fmt="csv", clock=clock)
            raise
    return summary


MAX_PAGES_CHARS = 256 << 20  # a pages file is small (one row per Facebook Page); refuse a huge one


def _page_reader(f, delimiter: str | None):
    """(line, row, error) records of `f` with the given delimiter, or the one of the first
    non-blank line; a runaway quote is a reject and reading resumes on the next line."""
    text = f.read(MAX_PAGES_CHARS + 1)
    if len(text) > MAX_PAGES_CHARS:
        raise InputError("too large for a pages file (over 256 MB)", path=f.path,
                         hint="a pages CSV holds one row per Facebook Page")
    first_line = next((line for line in io.StringIO(text, newline="") if line.strip()), "")
    return csv_records(text, delimiter or detect_delimiter(first_line))


def _ingest_page_rows(ws: Workspace, run: Run, reader, *, strict: bool, now: int) -> FileSummary:
    header = None
    for lineno, row, error in reader:
        if error is not None:
            if strict:
                raise InputError(error, path=run.summary.path, line=lineno)
            run.reject(lineno, error)
            continue
        if not row or not any(c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip().lstrip("\ufeff").lower() for c in row]
            if "page_id" not in header:
                raise InputError("CSV header lacks page_id", path=run.summary.path, line=lineno,
                                 hint=f"columns: {', '.join(PAGE_COLUMNS)}")
            dupes = sorted({c for c in header if c and header.count(c) > 1})
            if dupes:
                raise InputError(f"CSV header names column(s) {', '.join(dupes)} more than once: which "
                                 "one holds the value is ambiguous", path=run.summary.path, line=lineno,
                                 hint="remove or rename the extra column and ingest again")
            continue
        try:
            if len(row) != len(header):
                raise BadValue(f"expected {len(header)} columns, found {len(row)}")
            page = parse_page_row(dict(zip(header, row)))
        except BadValue as exc:
            if strict:
                raise InputError(str(exc), path=run.summary.path, line=lineno) from None
            run.reject(lineno, str(exc), ",".join(row)[:200])
            continue
        upsert = ws.conn.execute(UPSERT_PAGE, page + (now, run.id))
        run.summary.count("accepted" if upsert.rowcount else "duplicate")
    return run.summary
