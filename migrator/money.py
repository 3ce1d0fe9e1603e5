"""One way to show money everywhere (CLI, JSON, HTML): major units, the currency's own decimals.

Meta takes and reports amounts in the ad account currency's minor unit (cents for USD; Meta's MM
send-messages page,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/send-messages).
People read
major units: 18 USD cents are "USD 0.18", 5000 JPY are "JPY 5,000", 50000 IDR are
"IDR 50,000" (Meta counts the yen and the rupiah in whole units). The number of decimals is
Meta's currency offset (not ISO 4217's exponent), kept below as data; any other currency has 2.

Every figure also says what it rests on (`BASES`): an *estimated* cost (the plan's cost per
message times the sends planned), an *accepted* cost (sends Meta accepted, times the cost per
message) or a *delivered* cost (delivered messages times the cost per message; Meta bills
delivered messages, and its invoice is the authority), or a *budget*.
"""

from __future__ import annotations

from decimal import Decimal

# Decimals of each ad-account currency as Meta counts them: Meta's "offset" per currency
# (https://developers.facebook.com/docs/marketing-api/currencies): an amount in the API is the
# major amount times the offset. Offset 1 (no minor unit in the API) for the currencies below,
# 100 for every other currency Meta supports. This is not ISO 4217: Meta counts IDR, HUF, TWD,
# COP and CRC in whole units (ISO gives them 2 decimals), and BHD and JOD in hundredths (ISO: 3),
# so an ISO table would show an IDR 50,000 budget as "IDR 500.00".
MINOR_UNITS: dict[str, int] = {
    "CLP": 0, "COP": 0, "CRC": 0, "HUF": 0, "IDR": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0,
    "TWD": 0, "VND": 0,
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
    """Decimals of `currency` in Meta's amounts (0 for offset 1, else 2)."""
    return MINOR_UNITS.get((currency or "").strip().upper(), DEFAULT_MINOR_UNIT)


def to_major(minor: int, currency: str | None) -> Decimal:
    """Minor units -> an exact Decimal in major units (no float rounding of large sums)."""
    return Decimal(int(minor)).scaleb(-minor_digits(currency))


def format_money(minor: int | None, currency: str | None, *, none: str | None = None) -> str | None:
    """18, 'USD' -> 'USD 0.18'; 5000, 'JPY' -> 'JPY 5,000'; 50000, 'IDR' -> 'IDR 50,000'.

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
