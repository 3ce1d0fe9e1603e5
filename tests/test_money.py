"""The shared money formatter: major units with the decimals Meta counts for each currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.money import MINOR_UNITS, describe, figure, format_money, minor_digits, to_major
from migrator.words import plural


@pytest.mark.parametrize("minor, cur, text", [
    (18, "USD", "USD 0.18"),
    (500000, "USD", "USD 5,000.00"),
    (5000, "JPY", "JPY 5,000"),          # the yen has no minor unit
    (7, "jpy", "JPY 7"),
    (378, "BRL", "BRL 3.78"),
    (7360, "INR", "INR 73.60"),
    (50000, "IDR", "IDR 50,000"),       # Meta: offset 1 (ISO would say 2 decimals: "IDR 500.00")
    (1500, "HUF", "HUF 1,500"),
    (1500, "TWD", "TWD 1,500"),
    (1500, "BHD", "BHD 15.00"),         # Meta: offset 100 (ISO would say 3 decimals)
    (12000, "VND", "VND 12,000"),
    (0, "USD", "USD 0.00"),
    (-250, "USD", "USD -2.50"),
    (123456789012345678, "USD", "USD 1,234,567,890,123,456.78"),   # exact, no float rounding
    (5, "XYZ", "XYZ 0.05"),            # unknown currency: two decimals
])
def test_format_money(minor, cur, text):
    assert format_money(minor, cur) == text


def test_missing_amount_and_bases():
    assert format_money(None, "USD") is None
    assert format_money(None, "USD", none="unbounded") == "unbounded"
    assert describe(18, "USD", "estimated") == "USD 0.18 estimated"
    assert describe(5000, "JPY", "delivered") == "JPY 5,000 delivered"
    assert figure(378, "brl", "accepted") == {"minor": 378, "currency": "BRL", "text": "BRL 3.78",
                                             "basis": "accepted"}
    with pytest.raises(ValueError):
        describe(1, "USD", "guessed")


def test_table_is_metas_currency_offsets():
    # https://developers.facebook.com/docs/marketing-api/currencies: offset 1 -> no decimals
    assert {c for c in ("CLP", "COP", "CRC", "HUF", "IDR", "ISK", "JPY", "KRW", "PYG", "TWD", "VND")
            if minor_digits(c) == 0} == {"CLP", "COP", "CRC", "HUF", "IDR", "ISK", "JPY", "KRW", "PYG", "TWD", "VND"}
    assert minor_digits("JOD") == 2 and minor_digits("BHD") == 2 and minor_digits("USD") == 2
    assert minor_digits("INR") == 2 and minor_digits("BRL") == 2 and minor_digits(None) == 2
    assert all(len(c) == 3 and c.isupper() and d == 0 for c, d in MINOR_UNITS.items())


@given(st.integers(min_value=-10 ** 15, max_value=10 ** 15), st.sampled_from(["USD", "JPY", "IDR", "INR", "BHD"]))
def test_round_trip(minor, cur):
    text = format_money(minor, cur)
    code, amount = text.split(" ")
    amount = Decimal(amount.replace(",", ""))
    assert code == cur and amount == to_major(minor, cur)
    assert amount.scaleb(minor_digits(cur)) == minor


@pytest.mark.parametrize("n, word, text", [(0, "page", "0 pages"), (1, "send", "1 send"), (2, "send", "2 sends"),
                                           (1, "batch", "1 batch"), (3, "batch", "3 batches"),
                                           (1, "subscription", "1 subscription"), (1234, "entry", "1,234 entries"),
                                           (2, "person", "2 people"), (1, "day", "1 day"), (2, "day", "2 days")])
def test_plural(n, word, text):
    assert plural(n, word) == text
