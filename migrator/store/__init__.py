"""The workspace: one SQLite file (mode 0600, WAL) that holds the whole migration state.

`open_workspace(path)` creates or opens it and applies pending schema migrations; a
workspace written by a newer migrator (migrations this version does not know) is refused.
"""

from migrator.store.workspace import (
    DEFAULT_DB,
    Workspace,
    disk_error,
    disk_failed,
    open_workspace,
    resolve_db_path,
)

__all__ = ["DEFAULT_DB", "Workspace", "disk_error", "disk_failed", "open_workspace", "resolve_db_path"]
