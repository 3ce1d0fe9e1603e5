"""One exception hierarchy for everything the toolkit refuses or fails to do.

Every error a user can cause (bad input, stale plan, lock held, API refusal) is a
`MigratorError`: the CLI prints its message and hint and exits 1, never a traceback.
Messages must never contain access tokens; subscription tokens only as short hashes.
"""

from __future__ import annotations


class MigratorError(Exception):
    """Base class: a failure the user can understand and act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class InputError(MigratorError):
    """An input file, record or option value is malformed (says where and what to do)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 hint: str | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message, hint=hint)
        self.path = path
        self.line = line


class WorkspaceError(MigratorError):
    """The workspace database cannot be opened or used."""


class SchemaTooNewError(WorkspaceError):
    """The workspace was written by a newer migrator with migrations this one does not know."""


class RulesError(MigratorError):
    """The rules file is malformed (names the entry)."""


class PlanError(MigratorError):
    """A plan spec or saved plan is invalid."""


class StalePlanError(PlanError):
    """A saved plan no longer matches the workspace/spec/rules it was made from."""


class LockHeldError(MigratorError):
    """Another executor holds the workspace lock."""


class OptionError(MigratorError):
    """An option names something that cannot be done as asked (a usage error: exit 2).

    Raised by the library, not by click, where only the workspace can tell (e.g. `--resend SEND_ID`
    of a row that is not `unknown`); the message says what the thing is and what to do instead.
    """

    exit_code = 2
