"""Rules as data: every date, geo list, cadence and limit, with its source and verified date.

`load_rules()` reads the packaged `rules.toml`; `load_rules(path)` applies an override
file on top (see `migrator.rules.model` for the merge semantics). `Rules.fingerprint()`
hashes the effective values so a plan can tell when the rules it was made with changed.
"""

from migrator.rules.model import Entry, Rules, load_rules, packaged_rules_text

__all__ = ["Entry", "Rules", "load_rules", "packaged_rules_text"]
