"""One way to show money everywhere (CLI, JSON, HTML): major units, the currency's own decimals.

Meta takes and reports amounts in the ad account currency's minor unit (cents for USD: see
/work/shared/reference/mm-api.md, "Units: ad-account currency's smallest unit"). People read
major units: 18 USD cents are "USD 0.18", 5000 JPY are "JPY 5,000" (the yen has no minor
unit), 1500 KWD fils are "KWD 1.500". The number of decimals is ISO 4217's minor unit
("exponent") per currency, kept below as data; any currency not listed has 2.

Every figure also says what it rests on (`BASES`): an *estimated* cost (the plan's cost per
message times the sends planned), an *accepted* cost (sends Meta accepted, times the cost per
message) or a *delivered* cost (delivered messages times the cost per message; Meta bills
delivered messages, and its invoice is the authority), or a *budget*.
"""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 minor units for every currency whose exponent is not 2 (source: ISO 4217 list one,
# https://www.six-group.com/en/products-services/financial-information/data-standards.html).
MINOR_UNITS: dict[str, int] = {
    # no minor unit
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # thousandths
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # ten-thousandths (units of account)
    "CLF": 4, "UYW": 4,
}
DEFAULT_MINOR_UNIT = 2

# what a figure rests on -> the words every surface uses for it
BASES: dict[str, str] = {
    "estimated": "estimated (planned sends × the plan's cost per message)",
    "accepted": "accepted by Meta (sends accepted × the plan's cost per message; an estimate, not a bill)",
    "delivered": "delivered (delivered messages × the plan's cost per message; Meta bills delivered messages, "
                 "its invoice is the authority)",
    "budget": "budget (what the campaigns may spend)",
}


def minor_digits(currency: str | None) -> int:
    """Decimals of `currency`'s major unit (ISO 4217 exponent; 2 when unknown)."""
    return MINOR_UNITS.get((currency or "").strip().upper(), DEFAULT_MINOR_UNIT)


def to_major(minor: int, currency: str | None) -> Decimal:
    """Minor units -> an exact Decimal in major units (no float rounding of large sums)."""
    return Decimal(int(minor)).scaleb(-minor_digits(currency))


def format_money(minor: int | None, currency: str | None, *, none: str | None = None) -> str | None:
    """18, 'USD' -> 'USD 0.18'; 5000, 'JPY' -> 'JPY 5,000'; 1500, 'KWD' -> 'KWD 1.500'.

    `none` is returned for a missing amount (e.g. "no limit" for an absent budget).
    """
    if minor is None:
        return none
    cur = (currency or "").strip().upper()
    digits = minor_digits(cur)
    return f"{cur} {to_major(minor, cur):,.{digits}f}".strip()


def describe(minor: int | None, currency: str | None, basis: str) -> str | None:
    """'USD 0.18 estimated' / 'USD 0.12 accepted' / 'USD 0.10 delivered': the figure and its basis."""
    if basis not in BASES:
        raise ValueError(f"unknown money basis {basis!r}")
    text = format_money(minor, currency)
    return None if text is None else f"{text} {basis}"


def figure(minor: int | None, currency: str | None, basis: str) -> dict | None:
    """The same figure for JSON: minor units, currency, the formatted text and its basis."""
    if minor is None:
        return None
    if basis not in BASES:
        raise ValueError(f"unknown money basis {basis!r}")
    return {"minor": int(minor), "currency": (currency or "").upper(), "text": format_money(minor, currency),
            "basis": basis}
