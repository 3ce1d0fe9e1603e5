"""Counts of what an ingest did: every record is accepted, duplicate, ignored or rejected."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FileSummary(BaseModel):
    path: str
    format: str | None = None
    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0
    warnings: int = 0  # records kept without a bad optional field (not a fifth outcome)
    run_id: int | None = None
    first_rejects: list[dict] = Field(default_factory=list, exclude=True)
    first_warnings: list[dict] = Field(default_factory=list, exclude=True)

    def count(self, kind: str) -> None:
        self.records += 1
        if kind == "accepted":
            self.accepted += 1
        elif kind == "duplicate":
            self.duplicates += 1
        elif kind == "ignored":
            self.ignored += 1
        elif kind == "rejected":
            self.rejected += 1
        else:  # pragma: no cover - programming error
            raise ValueError(kind)


class IngestSummary(BaseModel):
    files: list[FileSummary] = Field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def ignored(self) -> int:
        return sum(f.ignored for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def warnings(self) -> int:
        return sum(f.warnings for f in self.files)

    def refused_files(self) -> list[FileSummary]:
        """Files from which nothing was accepted (or found again) but something was rejected."""
        return [f for f in self.files if f.rejected and not (f.accepted or f.duplicates)]

    def to_json(self) -> dict:
        """The `ingest --json` object: per-file and total counts, and the run ids."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "files": [
                {"path": f.path, "format": f.format, "records": f.records, "accepted": f.accepted,
                 "duplicates": f.duplicates, "ignored": f.ignored, "rejected": f.rejected,
                 "warnings": f.warnings, "run_id": f.run_id,
                 "first_rejects": f.first_rejects[:5], "first_warnings": f.first_warnings[:5]}
                for f in self.files
            ],
        }
