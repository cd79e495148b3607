"""Cost per candidate of phonenumbers / python-stdnum versus aimds' own validators.

Neither library is a project dependency; install them in a scratch venv and put its
site-packages on the path of the project interpreter, e.g.
  python -m venv /tmp/libs && /tmp/libs/bin/pip install phonenumbers python-stdnum
  PYTHONPATH=$(echo /tmp/libs/lib/python3*/site-packages) .venv/bin/python benchmarks/pii_libs_cost.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aimds.detect import validators as v


def per_call_us(fn: Callable[[str], object], values: list[str], rounds: int = 200) -> float:
    """Mean microseconds per call of ``fn`` over ``values`` (after one warm-up pass)."""
    for x in values:
        fn(x)
    t0 = time.perf_counter()
    for _ in range(rounds):
        for x in values:
            fn(x)
    return (time.perf_counter() - t0) / (rounds * len(values)) * 1e6


def main() -> None:
    """Print µs per candidate for each library call and the matching aimds validator."""
    import phonenumbers
    from stdnum import iban, luhn

    phones = ["+44 20 7946 0958", "(415) 867-2309", "+49 30 901820", "06 12 34 56 78", "2023-10-12", "+1 212 456 7890"]

    def pn(x: str) -> bool:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(x, "US"))
        except phonenumbers.NumberParseException:
            return False

    ibans, cards = ["DE89370400440532013000", "GB82WEST12345698765432"], ["4539945807302151", "378282246310005"]
    t0 = time.perf_counter()
    import phonenumbers.geocoder
    print(f"phonenumbers.geocoder import: {(time.perf_counter() - t0) * 1e3:.0f} ms")
    print(f"phonenumbers parse+is_valid: {per_call_us(pn, phones):.1f} µs   "
          f"aimds phone: {per_call_us(v.phone, phones):.1f} µs")
    print(f"stdnum iban.is_valid: {per_call_us(iban.is_valid, ibans):.1f} µs   "
          f"aimds iban: {per_call_us(v.iban, ibans):.1f} µs")
    print(f"stdnum luhn.is_valid: {per_call_us(luhn.is_valid, cards):.1f} µs   "
          f"aimds credit_card: {per_call_us(v.credit_card, cards):.1f} µs")


if __name__ == "__main__":
    main()
