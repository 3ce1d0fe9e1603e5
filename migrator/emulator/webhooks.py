"""Echo, delivery and read webhook events for accepted sends, appended to a JSONL file.

Each line is one Page webhook delivery in Meta's change-notification shape:
    {"object": "page", "entry": [{"id": PAGE_ID, "time": MS, "changes": [
        {"field": "marketing_message_echoes", "value": {...}}]}]}
Value keys follow Meta's MM webhook fields
(https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/send-messages):
echoes and deliveries carry recipient_id, page_id, app_id,
timestamp, mid, marketing_message_tracking_id, messenger_subscription_token, message_id; reads
the same without mid. A share of accepted sends (fault profile [webhooks] delivery_failed_rate)
is reported by `marketing_message_delivery_failed` instead of a delivery (app_id, business_id,
page_id, messenger_subscription_token, timestamp, error_message, message_id: no tracking id);
a share of reads (click_rate) is followed by `marketing_message_clicks` (recipient_id, page_id,
timestamp, mid, messenger_subscription_token, message_id: no tracking id, no app_id). Timestamps are ms. Lines are buffered and flushed every 512 events or
second while sends arrive, and on close, POST /_emulator/flush and GET /_emulator/state.
"""

from __future__ import annotations

import os
import random
import stat
import time
from pathlib import Path

import orjson

from migrator.emulator.state import Accepted


def open_private_append(path: Path):
    """Open `path` for appending, created 0600: the lines hold raw subscription tokens and
    PSIDs. An existing file is tightened to 0600 too; a symlink or anything
    but a regular file is refused."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


class WebhookWriter:
    def __init__(self, path: str | Path, *, app_id: str, seed: int, read_rate: float,
                 flush_every: int = 512, business_id: str = "", delivery_failed_rate: float = 0.0,
                 click_rate: float = 0.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fh = open_private_append(self.path)
        except OSError as exc:
            from migrator.errors import InputError

            raise InputError(f"cannot write the webhooks file: {exc.strerror or exc}", path=str(self.path),
                             hint="pass --webhooks with a regular file path (not a symlink)") from None
        self.app_id = app_id
        self.read_rate = read_rate
        self.business_id = business_id
        self.delivery_failed_rate = delivery_failed_rate
        self.click_rate = click_rate
        self.rng = random.Random(seed ^ 0x5EED)
        self._buf: list[bytes] = []
        self.flush_every = flush_every
        self.flush_seconds = 1.0
        self._last_flush = time.monotonic()
        self.events = 0
        self._last_seq = 0
        self.on_flush = None        # called with the last send's seq once its lines are written

    def _line(self, field: str, page_id: str, ts_ms: int, value: dict) -> bytes:
        return orjson.dumps({"object": "page", "entry": [{"id": page_id, "time": ts_ms, "changes": [
            {"field": field, "value": value}]}]}) + b"\n"

    def accepted(self, a: Accepted) -> None:
        s = a.send
        t0 = int(s.time * 1000)
        base = {"recipient_id": a.subscriber.psid, "page_id": s.page_id, "app_id": self.app_id,
                "marketing_message_tracking_id": s.tracking_id,
                "messenger_subscription_token": s.token, "message_id": s.message_id}
        mid = "m_" + s.tracking_id.replace("-", "")
        echo = {**base, "timestamp": t0, "mid": mid}
        t1 = t0 + 500 + int(self.rng.random() * 2500)
        self._buf.append(self._line("marketing_message_echoes", s.page_id, t0, echo))
        self.events += 1
        if self.delivery_failed_rate and self.rng.random() < self.delivery_failed_rate:
            failed = {"app_id": self.app_id, "business_id": self.business_id, "page_id": s.page_id,
                      "messenger_subscription_token": s.token, "timestamp": t1,
                      "error_message": "The message could not be delivered.", "message_id": s.message_id}
            self._buf.append(self._line("marketing_message_delivery_failed", s.page_id, t1, failed))
            self.events += 1
        else:
            self._buf.append(self._line("marketing_message_deliveries", s.page_id, t1,
                                        {**base, "timestamp": t1, "mid": mid}))
            self.events += 1
            if self.rng.random() < self.read_rate:
                t2 = t1 + int(self.rng.expovariate(1 / 600_000))
                self._buf.append(self._line("marketing_message_reads", s.page_id, t2, {**base, "timestamp": t2}))
                self.events += 1
                if self.click_rate and self.rng.random() < self.click_rate:
                    t3 = t2 + 1000 + int(self.rng.expovariate(1 / 60_000))
                    click = {"recipient_id": a.subscriber.psid, "page_id": s.page_id, "timestamp": t3,
                             "mid": mid, "messenger_subscription_token": s.token, "message_id": s.message_id}
                    self._buf.append(self._line("marketing_message_clicks", s.page_id, t3, click))
                    self.events += 1
        self._last_seq = max(self._last_seq, s.seq)
        if len(self._buf) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if self._buf:
            self._fh.write(b"".join(self._buf))
            self._buf.clear()
        self._fh.flush()
        if self.on_flush is not None and self._last_seq:
            self.on_flush(self._last_seq)

    def close(self) -> None:
        self.flush()
        self._fh.close()
