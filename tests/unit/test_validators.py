"""Checksum and structure validators against published valid numbers and one-digit corruptions."""

from __future__ import annotations

import pytest

from aimds.detect import validators as v

VALID = [
    ("credit_card", "4539 9458 0730 2151"), ("credit_card", "378282246310005"), ("credit_card", "5425262129972206"),
    ("credit_card", "2223003122003222"), ("credit_card", "6011111111111117"), ("credit_card", "3530111333300000"),
    ("iban", "GB82 WEST 1234 5698 7654 32"), ("iban", "DE89370400440532013000"),
    ("iban", "FR1420041010050500013M02606"),
    ("iban", "NL91ABNA0417164300"), ("iban", "CH9300762011623852957"),
    ("us_ssn", "536-22-8471"), ("uk_nino", "JH 58 21 73 B"),
    ("de_tax_id", "86095742719"), ("fr_nir", "2 55 08 14 168 025 38"), ("fr_nir", "184037512345690"),
    ("es_dni", "12345678Z"), ("es_dni", "X1234567L"), ("es_dni", "Y7654321G"),
    ("it_fiscal_code", "RSSMRA85T10A562S"), ("it_fiscal_code", "BNCGNN70A41H501V"),
    ("nl_bsn", "111222333"), ("nl_bsn", "123456782"),
    ("in_aadhaar", "4918 2736 4511"), ("br_cpf", "111.444.777-35"), ("br_cpf", "52998224725"),
    ("ipv4", "81.2.69.160"), ("ipv6", "2a02:1810:4d02:e00:5c3f:8a1:b2c4:91d7"), ("ipv6", "fe80::1ff:fe23:4567:890a"),
    ("email", "ravi.k@infosys.co.in"), ("phone", "+44 20 7946 0958"), ("phone", "(415) 867-2309"),
    ("phone", "06 12 34 56 78"),
]

INVALID = [
    ("credit_card", "4539 9458 0730 2152"), ("credit_card", "1234 5678 9012 3456"),
    ("credit_card", "4539-9458 0730-2151"),
    ("iban", "GB82 WEST 1234 5698 7654 33"), ("iban", "DE8937040044053201300"), ("iban", "XX89370400440532013000"),
    ("us_ssn", "000-22-8471"), ("us_ssn", "666-22-8471"), ("us_ssn", "936-22-8471"), ("us_ssn", "536-00-8471"),
    ("us_ssn", "536-22-0000"), ("uk_nino", "QQ123456C"), ("uk_nino", "GB123456A"), ("uk_nino", "JH582173E"),
    ("de_tax_id", "86095742718"), ("de_tax_id", "12345678903"), ("de_tax_id", "06095742719"),
    ("fr_nir", "2 55 08 14 168 025 39"), ("fr_nir", "455081416802538"),
    ("es_dni", "12345678A"), ("es_dni", "X1234567M"), ("it_fiscal_code", "RSSMRA85T10A562T"),
    ("it_fiscal_code", "RSSMRA85Z10A562S"), ("nl_bsn", "111222334"), ("nl_bsn", "000000000"),
    ("in_aadhaar", "4918 2736 4512"), ("in_aadhaar", "1918 2736 4511"), ("br_cpf", "111.111.111-11"),
    ("br_cpf", "111.444.777-36"), ("ipv4", "256.1.1.1"), ("ipv4", "01.2.3.4"), ("ipv4", "1.2.3"),
    ("ipv6", "12:30:45"), ("ipv6", "00:1a:2b:3c:4d:5e"), ("ipv6", "a::b"), ("email", "logo@2x.png"),
    ("email", ".a@b.com"), ("email", "a..b@c.com"), ("phone", "+99 123 456 7890"), ("phone", "(111) 222-3333"),
    ("phone", "0000 000 000"),
]


@pytest.mark.parametrize(("name", "value"), VALID, ids=[f"{n}:{x}" for n, x in VALID])
def test_valid(name: str, value: str) -> None:
    assert v.VALIDATORS[name](value)


@pytest.mark.parametrize(("name", "value"), INVALID, ids=[f"{n}:{x}" for n, x in INVALID])
def test_invalid(name: str, value: str) -> None:
    assert not v.VALIDATORS[name](value)


def test_check_digit_generators_agree_with_validators() -> None:
    assert v.luhn_ok("453994580730215" + v.luhn_digit("453994580730215"))
    assert v.iban("DE" + v.iban_check("DE", "370400440532013000") + "370400440532013000")
    assert v.de_tax_id("8609574271" + v.de_tax_id_digit("8609574271"))
    assert v.fr_nir("2550814168025" + v.fr_nir_key("2550814168025"))
    assert v.fr_nir("178022A001002" + v.fr_nir_key("178022A001002"))
    assert v.it_fiscal_code("BNCGNN70A41H501" + v.it_fiscal_code_char("BNCGNN70A41H501"))
    assert v.in_aadhaar("49182736451" + v.verhoeff_digit("49182736451"))
    assert v.br_cpf("529982247" + v.br_cpf_digits("529982247"))


def test_every_single_digit_error_is_caught_by_luhn_and_verhoeff() -> None:
    card, aadhaar = "4539945807302151", "491827364511"
    for number, ok in ((card, v.luhn_ok), (aadhaar, v.verhoeff_ok)):
        for i, ch in enumerate(number):
            for d in "0123456789":
                if d != ch:
                    assert not ok(number[:i] + d + number[i + 1:]), (number, i, d)


def test_card_networks() -> None:
    assert v.card_network("4539945807302151") == "visa"
    assert v.card_network("2223003122003222") == "mastercard"
    assert v.card_network("378282246310005") == "amex"
    assert v.card_network("9999999999999995") is None


def test_secret_value_checks() -> None:
    assert v.high_entropy("AkXujq63ZHiOVNrHIdjKXlan062j0ifw")
    assert not v.high_entropy("AutoTokenizer.from_pretrained")   # no digits
    assert not v.high_entropy("your-api-key-here-123")
    assert not v.high_entropy("1111111111111111aaaa")
    assert v.password("Tr0ub4dor&3x") and not v.password("${DB_PASSWORD}") and not v.password("incorrect")
    assert v.jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert not v.jwt("eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiJ4In0.abc")   # header without alg
    assert v.credential_url("postgres://app:Zq7x9wLx@db:5432/o") and not v.credential_url("postgres://u:${P}@db/o")
    assert v.shannon_entropy("") == 0.0 and v.shannon_entropy("ab") == 1.0


def test_example_checks() -> None:
    assert v.phone_example("+1 (415) 555-0123") and not v.phone_example("(415) 867-2309")
    assert v.phone_example("07700 900123") and v.phone_example("+44 7700 900123")
    assert v.ipv4_example("192.0.2.10") and v.ipv4_example("127.0.0.1") and not v.ipv4_example("10.0.0.1")
    assert v.ipv6_example("2001:db8::1") and not v.ipv6_example("2a02:1810::1")
    assert v.email_example("a@example.com") and v.email_example("a@x.test") and not v.email_example("a@gmail.com")
