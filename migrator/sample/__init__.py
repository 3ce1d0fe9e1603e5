"""A deterministic synthetic RN estate: every input format, plus its ground truth.

- `generate_sample(out_dir, tokens=2000, pages=12, seed=7) -> SampleManifest` writes
  pages.csv, tokens.csv, tokens_listing.jsonl, webhooks.jsonl, content_sends.jsonl,
  content_library.json, subscribers.jsonl (for the emulator), truth.jsonl, manifest.json.
- `write_tokens_csv(path, n, seed)`, `write_webhooks_jsonl(path, n_events, seed)`: fast
  streaming writers of large inputs for benchmarks.
"""

from migrator.sample.bench import write_tokens_csv, write_webhooks_jsonl
from migrator.sample.estate import generate_sample
from migrator.sample.geo import candidate_countries, region_class, zone_class
from migrator.sample.model import SampleFile, SampleManifest

__all__ = ["SampleFile", "SampleManifest", "candidate_countries", "generate_sample",
           "region_class", "write_tokens_csv", "write_webhooks_jsonl", "zone_class"]
