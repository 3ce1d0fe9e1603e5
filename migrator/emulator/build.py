"""Build an emulator app from what its users have: subscribers, a fault profile, settings.

One entry for `migrator emulator serve`, the demo and the tests, so each loads subscribers
and fault profiles the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from migrator.emulator.app import create_app
from migrator.emulator.assets import Assets
from migrator.emulator.clock import VirtualClock
from migrator.emulator.config import EmulatorConfig, FaultProfile, load_fault_profile
from migrator.emulator.subscribers import (LoadResult, Subscriber, load_subscribers_jsonl,
                                           load_subscribers_workspace)


def build_emulator_app(*, subscribers: list[Subscriber] | str | Path | None = None,
                       workspace: Any | Callable[[], Any] | None = None,
                       faults: str | Path | FaultProfile | None = None, seed: int | None = None,
                       virtual_clock: bool = False, rules: Any | str | Path | None = None,
                       page_tokens: dict[str, str] | str | Path | None = None,
                       assets: Any | str | Path | None = None, config: EmulatorConfig | None = None,
                       encoding: str | None = None, **settings: Any) -> tuple[Any, LoadResult]:
    """The emulator app and the subscribers it was loaded with.

    `subscribers`: Subscriber objects, or a subscribers JSONL file; without them, the tokens of
    `workspace` (a workspace, or a function that opens one). `faults`: a fault profile file
    (whose seed is the default `seed`) or a FaultProfile. `virtual_clock`: time moves only when
    told (POST /_emulator/clock) unless a `clock` is given in `settings`. `rules`: a Rules
    object or a rules override file (the emulator enforces the toolkit's limits).
    `page_tokens`: a page_id -> Page token map or its file (page_id<TAB>token, mode 0600).
    `assets`: the business assets (an Assets or its TOML/JSON fixture; default: everything set
    up). `encoding`: the fault profile file's text encoding (default: detected). `settings`
    are EmulatorConfig fields (warmup_seconds, webhooks_path, clock,
    account_timezones, ...); or pass a whole `config`.
    """
    if isinstance(subscribers, (str, Path)):
        loaded = load_subscribers_jsonl(subscribers)
    elif subscribers is not None:
        loaded = LoadResult(subscribers=list(subscribers))
    else:
        loaded = load_subscribers_workspace(workspace() if callable(workspace) else workspace)
    if config is None:
        profile_seed = None
        if isinstance(faults, (str, Path)):
            faults, profile_seed = load_fault_profile(faults, encoding=encoding)
        settings.setdefault("faults", faults or FaultProfile())
        if virtual_clock and settings.get("clock") is None:
            settings["clock"] = VirtualClock()
        if isinstance(rules, (str, Path)):
            from migrator.rules import load_rules

            rules = load_rules(rules)
        if rules is not None:
            settings["rules"] = rules
        if isinstance(page_tokens, (str, Path)):
            from migrator.inventory.pull import load_page_token_map

            page_tokens = load_page_token_map(page_tokens)
        if page_tokens is not None:
            settings["page_tokens"] = page_tokens
        config = EmulatorConfig(seed=seed if seed is not None else (profile_seed or 0), **settings)
    if isinstance(assets, (str, Path)):
        assets = Assets.load(assets)
    return create_app(config, subscribers=loaded.subscribers, assets=assets), loaded
