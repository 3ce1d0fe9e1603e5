"""Store the MM conversion of the workspace's RN content (table `contents`) for audit and planner.

The converter (`migrator.convert`) is pure; `contents` is the inventory's table, so the
inventory writes the converter's answers into it. Set-based and flat in memory: rows are
read in id order, BATCH at a time, and written back with one executemany per batch, all
inside one transaction (the caller's, if it has one).
"""

from __future__ import annotations

import json
from typing import Any

from migrator.convert import convert_message
from migrator.convert.model import CONVERTER_VERSION, OUTCOMES, ConversionResult, ConvertPolicy, problem

BATCH = 500


def _dumps(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _row(result: ConversionResult, content_id: int) -> tuple:
    return (
        result.outcome,
        None if result.message is None else _dumps(result.message),
        _dumps([c.model_dump() for c in result.changes]),
        _dumps([p.model_dump() for p in result.problems]),
        CONVERTER_VERSION,
        content_id,
    )


def _convert_stored(text: str, policy: ConvertPolicy | None) -> ConversionResult:
    try:
        obj = json.loads(text)
    except (TypeError, ValueError):
        return ConversionResult(outcome="unsupported", message=None, problems=[
            problem("MESSAGE_NOT_JSON", "the stored message is not valid JSON")])
    return convert_message(obj, policy)


def convert_workspace_contents(ws, policy: ConvertPolicy | None = None, *,
                               force: bool = False) -> dict[str, int]:
    """Convert `contents` rows not yet converted by this CONVERTER_VERSION (all with force).

    `ws` is the workspace. Returns the number of rows per outcome over all contents rows:
    {"exact": n, "lossy": n, "needs_edit": n, "unsupported": n}.
    """
    if ws.conn.in_transaction:
        return _convert_all(ws.conn, policy, force)
    with ws.transaction() as conn:
        return _convert_all(conn, policy, force)


def _convert_all(conn, policy: ConvertPolicy | None, force: bool) -> dict[str, int]:
    where = "" if force else " AND (converter_version IS NULL OR converter_version != ?)"
    params: tuple = () if force else (CONVERTER_VERSION,)
    last = -1
    while True:
        rows = conn.execute(
            f"SELECT id, message FROM contents WHERE id > ?{where} ORDER BY id LIMIT {BATCH}",
            (last, *params)).fetchall()
        if not rows:
            break
        conn.executemany(
            "UPDATE contents SET outcome=?, mm_message=?, changes=?, problems=?,"
            " converter_version=? WHERE id=?",
            [_row(_convert_stored(text, policy), cid) for cid, text in rows])
        last = rows[-1][0]
    counts = {o: 0 for o in OUTCOMES}
    for outcome, n in conn.execute(
            "SELECT outcome, COUNT(*) FROM contents WHERE outcome IS NOT NULL GROUP BY outcome"):
        counts[outcome] = n
    return counts
