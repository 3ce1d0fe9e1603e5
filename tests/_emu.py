"""Helpers for the graph/emulator tests: an in-process emulator with a virtual clock and clients on it."""

from __future__ import annotations

from contextlib import contextmanager

from migrator.emulator import (EmulatorConfig, Subscriber, SyncEmulatorTransport, VirtualClock,
                               build_emulator_app)
from migrator.graph import NO_RETRY, GraphClient

PAGE = "111"
OTHER_PAGE = "222"
ACT = "555"

SUBSCRIBERS = [
    Subscriber(token="tok-us-1", page_id=PAGE, region="US", psid="psid1", timezone="America/New_York",
               topic_title="Deals"),
    Subscriber(token="tok-us-2", page_id=PAGE, region="BR", psid="psid2"),
    Subscriber(token="tok-us-3", page_id=PAGE, region=None, psid="psid3"),
    Subscriber(token="tok-fr", page_id=PAGE, region="FR", psid="psid4"),
    Subscriber(token="tok-gb", page_id=PAGE, region="GB", psid="psid5"),
    Subscriber(token="tok-stop", page_id=PAGE, region="US", opted_out=True, psid="psid6"),
    Subscriber(token="tok-other", page_id=OTHER_PAGE, region="US", psid="psid7"),
]


def make(config: EmulatorConfig | None = None, subscribers=None, **kw):
    """(app, emulator, clock) with a virtual clock and the standard subscribers."""
    clock = VirtualClock()
    cfg = config or EmulatorConfig(**{"warmup_seconds": 0, **kw})
    cfg.clock = clock
    app, _ = build_emulator_app(config=cfg, subscribers=[Subscriber(**{f: getattr(s, f) for f in s.__slots__})
                                                         for s in (subscribers or SUBSCRIBERS)])
    return app, app.state.emulator, clock


@contextmanager
def client_for(app, *, token: str = "sys-user-token-SECRET", retry=NO_RETRY, **kw):
    transport = SyncEmulatorTransport(app)
    g = GraphClient(token, base_url="http://emulator.test", transport=transport, retry=retry, **kw)
    try:
        yield g
    finally:
        g.close()
        transport.close()
