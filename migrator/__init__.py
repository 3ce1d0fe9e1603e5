"""migrator: move a Messenger Recurring Notifications estate onto the Marketing Message API.

The command-line tool (`migrator`) is a thin layer over the library functions in the
subpackages: `inventory` (ingest), `convert`, `rules`, `audit`, `plan`, `execute`, `graph`,
`emulator`, `store` and `report`. Scripts and tests call those functions directly.
"""

__version__ = "0.1.0"
