"""Page webhook deliveries for the sample, written as Meta delivers them.

Events are queued by delivery time (event time + network delay), so the file is close to
time order but not equal to it: some events are delayed past later ones (out of order), a
few deliveries are repeated (at-least-once), several events and entries share a delivery,
one line is a JSON array of deliveries and one line is a truncated copy (malformed).
Memory holds only the events not yet due, never the whole file.
"""

from __future__ import annotations

import heapq
import random
from typing import IO

import orjson

from migrator.sample.rand import _ri

ARRAY_AT_LINE = 4       # this line holds a JSON array of deliveries
ARRAY_SIZE = 3
MALFORMED_AT_LINE = 8   # this line is a truncated copy of the line before
REDELIVERY_RATE = 0.03
# events per delivery: 1 (60%), 2 (20%), 3 (12%), 4 (8%)


def dumps(obj) -> str:
    """Compact JSON, keys in insertion order (orjson: the sample is dominated by encoding)."""
    return orjson.dumps(obj).decode()


def dumpl(obj) -> bytes:
    """One JSON line as bytes, for files opened in binary mode."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def truncated(line: bytes) -> bytes:
    """The first half of a JSON line (never valid JSON: its brackets stay open), still UTF-8."""
    return line[: max(10, len(line) // 2)].decode("utf-8", "ignore").encode("utf-8")


def optin_event(page_id: str, psid: str, ts_ms: int, optin: dict) -> dict:
    return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": ts_ms, "optin": optin}


class OneMalformedLine:
    """A JSON-lines writer whose line MALFORMED_AT is a truncated copy of the line before it
    (a realistic bad line: cut off, never a lost record). Subclasses set MALFORMED_AT and END
    (what follows each line they pass to `_write`)."""

    MALFORMED_AT: int
    END = b""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.line = 0
        self.last_line = b""
        self.malformed_line: int | None = None

    def _write(self, line: bytes) -> None:
        self.f.write(line + self.END)
        self.line += 1
        self.last_line = line
        if self.malformed_line is None and self.line + 1 == self.MALFORMED_AT:
            self._write_malformed()

    def _write_malformed(self) -> None:
        self.f.write(truncated(self.last_line) + b"\n")
        self.line += 1
        self.malformed_line = self.line

    def _malformed_if_missing(self) -> None:
        """A file shorter than MALFORMED_AT still gets its one bad line, at the end."""
        if self.malformed_line is None and self.last_line:
            self._write_malformed()


class DeliveryWriter(OneMalformedLine):
    """Queue messaging events by delivery time; write them as batched deliveries.

    Events are serialised when queued (a string holds less memory than a dict, and a
    delivery is then joined, not re-encoded); `f` is a binary file.
    """

    MALFORMED_AT = MALFORMED_AT_LINE
    END = b"\n"

    def __init__(self, f: IO[bytes], rng: random.Random):
        super().__init__(f)
        self.rng = rng
        self._heap: list[tuple[int, int, str, object]] = []
        self._seq = 0
        self._batch: list[tuple[str, str, bool, int]] = []
        self._batch_target = 1
        self._array: list[tuple[bytes, int, int]] = []
        self.array_line: int | None = None
        self.deliveries = 0
        self.rn_events = 0            # distinct RN events (each queued once)
        self.duplicate_events = 0     # RN events repeated by redelivery
        self.ignored_events = 0       # non-RN events, counting repeats
        self.redeliveries = 0

    # --- queueing -----------------------------------------------------------------------
    def push(self, delivery_ms: int, page_id: str, event: dict, *, rn: bool) -> None:
        self._seq += 1
        # as str: orjson's bytes keep a ~2 KB buffer each, a str copy is exact-size
        heapq.heappush(self._heap, (delivery_ms, self._seq, "event",
                                    (page_id, orjson.dumps(event).decode(), rn)))
        if rn:
            self.rn_events += 1

    def drain(self, until_ms: int | None = None) -> None:
        """Write every delivery due at or before `until_ms` (all, when None)."""
        heap = self._heap
        while heap and (until_ms is None or heap[0][0] <= until_ms):
            due, _, kind, item = heapq.heappop(heap)
            if kind == "again":
                line, rn, ignored = item  # type: ignore[misc]
                self._emit(line, rn, ignored, due, again=True)
                continue
            page_id, event, rn = item  # type: ignore[misc]
            if not self._batch:
                r = self.rng.random() * 100
                self._batch_target = 1 if r < 60 else 2 if r < 80 else 3 if r < 92 else 4
            self._batch.append((page_id, event, rn, due))
            if len(self._batch) >= self._batch_target:
                self._flush_batch()
        if until_ms is None:
            self._flush_batch()
            self._finish()

    # --- assembling and writing ---------------------------------------------------------
    def _flush_batch(self) -> None:
        if not self._batch:
            return
        entries: dict[str, list[str]] = {}
        rn = ignored = 0
        last_due = self._batch[-1][3]
        for page_id, event, is_rn, _ in self._batch:
            entries.setdefault(page_id, []).append(event)
            if is_rn:
                rn += 1
            else:
                ignored += 1
        self._batch = []
        # the bytes orjson gives for {"object": "page", "entry": [{"id", "time", "messaging"}]}
        time_part = f'","time":{last_due},"messaging":['
        line = ('{"object":"page","entry":[' + ",".join(
            '{"id":"' + page_id + time_part + ",".join(evs) + "]}"
            for page_id, evs in entries.items()) + "]}").encode()
        self._emit(line, rn, ignored, last_due, again=False)

    def _emit(self, line: bytes, rn: int, ignored: int, due: int, *, again: bool) -> None:
        self.deliveries += 1
        self.ignored_events += ignored
        if again:
            self.duplicate_events += rn
            self.redeliveries += 1
        elif self.rng.random() < REDELIVERY_RATE:
            self._seq += 1
            later = due + _ri(self.rng, 30_000, 7_200_000)
            heapq.heappush(self._heap, (later, self._seq, "again", (line, rn, ignored)))
        if self.array_line is None and self.line + 1 == ARRAY_AT_LINE:
            self._array.append((line, rn, ignored))
            if len(self._array) == ARRAY_SIZE:
                self._write_array()
            return
        self._write(line)

    def _write_array(self) -> None:
        self._write(b"[" + b",".join(x[0] for x in self._array) + b"]")
        self.array_line = self.line
        self._array = []

    def _finish(self) -> None:
        if self._array:
            self._write_array()
        self._malformed_if_missing()
