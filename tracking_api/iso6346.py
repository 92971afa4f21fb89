"""ISO 6346 container numbers: owner code (3 letters), category (U, J or Z),
6-digit serial number and a check digit over the first ten characters."""

from __future__ import annotations

import re
import string

PATTERN = r"^[A-Z]{3}[UJZ][0-9]{7}$"
_FORM = re.compile(PATTERN)


def _letter_values() -> dict[str, int]:
    # A=10, B=12, ...: counting up from 10 and skipping multiples of 11 (11, 22, 33),
    # so that no letter weighs the same as the modulus.
    values: dict[str, int] = {}
    value = 10
    for letter in string.ascii_uppercase:
        if value % 11 == 0:
            value += 1
        values[letter] = value
        value += 1
    return values


_VALUES = _letter_values() | {d: int(d) for d in string.digits}


def check_digit(first_ten: str) -> int:
    """The check digit of owner code, category and serial number (``"CSQU305438"`` -> 3)."""
    total = sum(_VALUES[c] << i for i, c in enumerate(first_ten))  # weights 2**i
    return total % 11 % 10  # a remainder of 10 is written 0


def problem(number: str) -> str | None:
    """None for a valid container number; otherwise what is wrong with it, naming the number."""
    if not _FORM.fullmatch(number):
        return (f"container {number!r} is not an ISO 6346 number: 3-letter owner code, category U, J or Z, "
                "6-digit serial and check digit, upper case without spaces (e.g. CSQU3054383)")
    expected = check_digit(number[:10])
    if int(number[10]) != expected:
        return f"container {number}: check digit {number[10]} is wrong, expected {expected}"
    return None
