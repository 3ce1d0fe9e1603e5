"""A local Graph API for the token listing and the Marketing Messages endpoints.

`build_emulator_app(subscribers=..., warmup_seconds=..., ...)` (or `create_app(EmulatorConfig(...),
subscribers=[...])`) returns a Starlette app: serve it with
uvicorn (`migrator emulator serve`) or mount it in-process with `EmulatorTransport` (async) /
`SyncEmulatorTransport` (sync). `VirtualClock` makes warm-up, cadence and budgets testable
without sleeping. What was accepted is readable under `/_emulator/` (sends, campaigns, state).
"""

from migrator.emulator.app import Emulator, create_app
from migrator.emulator.build import build_emulator_app
from migrator.emulator.clock import VirtualClock, WallClock
from migrator.emulator.config import EXCLUDED_REGIONS, EmulatorConfig, FaultProfile, load_fault_profile
from migrator.emulator.state import EmuError
from migrator.emulator.subscribers import (Subscriber, load_subscribers_jsonl, load_subscribers_workspace,
                                           subscriber_from_dict)
from migrator.emulator.transport import EmulatorTransport, SyncEmulatorTransport

__all__ = ["EXCLUDED_REGIONS", "EmuError", "Emulator", "EmulatorConfig", "EmulatorTransport", "FaultProfile",
           "Subscriber", "SyncEmulatorTransport", "VirtualClock", "WallClock", "build_emulator_app", "create_app",
           "load_fault_profile", "load_subscribers_jsonl", "load_subscribers_workspace",
           "subscriber_from_dict"]
