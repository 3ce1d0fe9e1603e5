"""RN Send API content -> Marketing Message (MM) content, and MM pre-flight validation.

Pure: no workspace access (`migrator.inventory.convert_workspace_contents` stores the
conversions in the inventory's `contents` table).

Public API (others code against it; keep it stable):

- `convert_message(obj, policy=None) -> ConversionResult`: one RN body or bare message.
- `validate_mm_message(message) -> list[Problem]`: documented MM constraints, with MM error codes.
- `ConvertPolicy`, `ConversionResult`, `Change`, `Problem`, `CONVERTER_VERSION`, and the code
  registries `CHANGE_CODES` / `PROBLEM_CODES` (code -> (kind, sentence)).

See docs/conversion.md for the conversion table and every code.
"""

from migrator.convert.convert import convert_message
from migrator.convert.model import (
    CHANGE_CODES, CONVERTER_VERSION, MM_ERROR_CODES, OUTCOMES, PROBLEM_CODES, Change,
    ConversionResult, ConvertPolicy, Problem,
)
from migrator.convert.validate import validate_mm_message

__all__ = [
    "CHANGE_CODES", "CONVERTER_VERSION", "MM_ERROR_CODES", "OUTCOMES", "PROBLEM_CODES", "Change",
    "ConversionResult", "ConvertPolicy", "Problem", "convert_message", "validate_mm_message",
]
