"""What `generate_sample` wrote: files, their hashes, and the counts tests and demos check."""

from __future__ import annotations

from pydantic import BaseModel, Field

# file names are a contract other parts of the toolkit (demo, emulator, tests) code against
PAGES_CSV = "pages.csv"
TOKENS_CSV = "tokens.csv"
LISTING_JSONL = "tokens_listing.jsonl"
WEBHOOKS_JSONL = "webhooks.jsonl"
CONTENT_SENDS = "content_sends.jsonl"
CONTENT_LIBRARY = "content_library.json"
SUBSCRIBERS = "subscribers.jsonl"
TRUTH = "truth.jsonl"
MANIFEST = "manifest.json"
TOKEN_SOURCES = (TOKENS_CSV, LISTING_JSONL, WEBHOOKS_JSONL)


class MalformedLine(BaseModel):
    line: int
    kind: str  # what is wrong with it (missing_token, bad_date, truncated_json, ...)


class SampleFile(BaseModel):
    name: str
    bytes: int
    sha256: str
    lines: int                      # physical lines in the file
    records: int                    # well-formed records (rows, items, events, sends, entries)
    malformed: list[MalformedLine] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


class SampleManifest(BaseModel):
    """Files written by `generate_sample` and what they contain."""

    out_dir: str
    seed: int
    tokens: int
    pages: int
    persons: int
    files: list[SampleFile]
    counts: dict[str, dict[str, int]]  # tokens by status, region_class, sources, ...

    def file(self, name: str) -> SampleFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)
