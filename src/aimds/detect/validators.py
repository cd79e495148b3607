"""Pure validators for PII and secret candidates: checksums, structural rules and entropy.

Every validator takes the candidate string as matched (separators included) and returns ``True``
when it is structurally valid. They run only on candidates that a pattern already found, so
they are plain Python; none of them uses a regular expression on user text. ``VALIDATORS``
maps the names used in ``data/pii/*.yaml`` to the functions.

Check-digit *generators* (``luhn_digit``, ``iban_check`` …) live here too: the labelled-set
generator uses them, and tests check them against published valid numbers.

Measured and not used (``benchmarks/pii_libs_cost.py``): ``phonenumbers`` costs ~15× and
``python-stdnum``'s IBAN check ~18× these validators per candidate, plus a slow first import;
the validators below need no extra dependency.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
from collections import Counter
from collections.abc import Callable

# --------------------------------------------------------------------------- helpers


def digits_of(s: str) -> str:
    """The ASCII digits of ``s`` in order (separators dropped)."""
    return "".join(c for c in s if "0" <= c <= "9")


def compact(s: str) -> str:
    """``s`` without spaces, dots, dashes and slashes, upper-cased."""
    return "".join(c for c in s if c not in " .-/\t").upper()


def shannon_entropy(s: str) -> float:
    """Shannon entropy of ``s`` in bits per character (0 for the empty string)."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


# --------------------------------------------------------------------------- payment cards


def luhn_ok(number: str) -> bool:
    """Whether the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_digit(partial: str) -> str:
    """The Luhn check digit to append to ``partial``."""
    for d in "0123456789":
        if luhn_ok(partial + d):
            return d
    raise AssertionError("unreachable")


# (network, prefix ranges as (low, high) on the first 6 digits, lengths)
_CARD_NETWORKS: tuple[tuple[str, tuple[tuple[int, int], ...], tuple[int, ...]], ...] = (
    ("visa", ((400000, 499999),), (13, 16, 19)),
    ("mastercard", ((510000, 559999), (222100, 272099)), (16,)),
    ("amex", ((340000, 349999), (370000, 379999)), (15,)),
    ("discover", ((601100, 601199), (644000, 659999), (622126, 622925)), (16, 17, 18, 19)),
    ("diners", ((300000, 305999), (360000, 369999), (380000, 399999)), (14, 15, 16, 17, 18, 19)),
    ("jcb", ((352800, 358999),), (16, 17, 18, 19)),
    ("unionpay", ((620000, 629999),), (16, 17, 18, 19)),
    ("maestro", ((501800, 501899), (502000, 502099), (503800, 503899), (589300, 589399), (630400, 630499),
                 (675900, 675999), (676100, 676399)), (12, 13, 14, 15, 16, 17, 18, 19)),
)


def card_network(number: str) -> str | None:
    """The card network whose IIN range and length fit the digit string, if any."""
    if len(number) < 12:
        return None
    iin = int(number[:6])
    for name, ranges, lengths in _CARD_NETWORKS:
        if len(number) in lengths and any(lo <= iin <= hi for lo, hi in ranges):
            return name
    return None


def credit_card(s: str) -> bool:
    """A payment card number: known network IIN and length, Luhn-valid, consistent separators."""
    number = digits_of(s)
    seps = {c for c in s if not c.isdigit()}
    if len(seps) > 1:
        return False
    return card_network(number) is not None and luhn_ok(number) and len(set(number)) > 1


# --------------------------------------------------------------------------- IBAN

IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def _mod97(s: str) -> int:
    """``s`` (digits and letters, A = 10 … Z = 35) as a number, modulo 97."""
    r = 0
    for ch in s:
        r = (r * 10 + ord(ch) - 48) % 97 if ch.isdigit() else (r * 100 + ord(ch) - 55) % 97
    return r


def iban(s: str) -> bool:
    """An IBAN: known country, that country's length, alphanumeric BBAN, mod-97 == 1."""
    v = compact(s)
    if len(v) < 15 or not v[:2].isalpha() or not v[2:4].isdigit() or not v.isalnum() or not v.isascii():
        return False
    if IBAN_LENGTHS.get(v[:2]) != len(v):
        return False
    return _mod97(v[4:] + v[:4]) == 1


def iban_check(country: str, bban: str) -> str:
    """The two IBAN check digits for ``country`` and ``bban``."""
    return f"{98 - _mod97(bban.upper() + country.upper() + '00'):02d}"


# --------------------------------------------------------------------------- national ids


def us_ssn(s: str) -> bool:
    """US SSN structural rules: area not 000/666/9xx, group not 00, serial not 0000."""
    d = digits_of(s)
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000" and len(set(d)) > 1


_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def uk_nino(s: str) -> bool:
    """UK National Insurance number format (HMRC prefix rules, suffix A–D)."""
    v = compact(s)
    if len(v) != 9 or not v[:2].isalpha() or not v[2:8].isdigit() or v[8] not in "ABCD":
        return False
    a, b = v[0], v[1]
    return a not in "DFIQUV" and b not in "DFIOQUV" and v[:2] not in _NINO_BAD_PREFIX


def de_tax_id_digit(first10: str) -> str:
    """The ISO 7064 MOD 11,10 check digit of a German Steuer-ID."""
    product = 10
    for ch in first10:
        total = (ord(ch) - 48 + product) % 10 or 10
        product = total * 2 % 11
    check = 11 - product
    return "0" if check == 10 else str(check)


def de_tax_id(s: str) -> bool:
    """German Steuer-Identifikationsnummer: 11 digits, no leading 0, one digit repeated, MOD 11,10."""
    d = digits_of(s)
    if len(d) != 11 or d[0] == "0":
        return False
    counts = Counter(d[:10])
    repeated = [c for c in counts.values() if c > 1]
    if len(repeated) != 1 or repeated[0] > 3:
        return False
    return de_tax_id_digit(d[:10]) == d[10]


def _nir_number(v: str) -> int | None:
    body = v[:13]
    if body[5:7] == "2A":
        body = body[:5] + "19" + body[7:]
    elif body[5:7] == "2B":
        body = body[:5] + "18" + body[7:]
    return int(body) if body.isdigit() else None


def fr_nir(s: str) -> bool:
    """French NIR (sécurité sociale): sex digit, month, department (2A/2B), key = 97 - n mod 97."""
    v = compact(s)
    if len(v) != 15 or v[0] not in "12378" or not v[13:].isdigit():
        return False
    month = v[3:5]
    if not month.isdigit() or not (1 <= int(month) <= 12 or 20 <= int(month) <= 42 or 50 <= int(month) <= 99):
        return False
    n = _nir_number(v)
    return n is not None and 97 - n % 97 == int(v[13:])


def fr_nir_key(first13: str) -> str:
    """The two-digit key of a NIR body."""
    n = _nir_number(first13 + "00")
    assert n is not None
    return f"{97 - n % 97:02d}"


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni(s: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter), letter = n mod 23."""
    v = compact(s)
    if len(v) != 9:
        return False
    if v[0] in "XYZ":
        v = str("XYZ".index(v[0])) + v[1:]
    return v[:8].isdigit() and v[8] == DNI_LETTERS[int(v[:8]) % 23]


_CF_ODD = {
    **dict(zip("0123456789", (1, 0, 5, 7, 9, 13, 15, 17, 19, 21), strict=True)),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12,
                                              14, 16, 10, 22, 25, 24, 23), strict=True)),
}
_CF_EVEN = {**{str(i): i for i in range(10)}, **{chr(65 + i): i for i in range(26)}}
_CF_MONTHS = "ABCDEHLMPRST"
_CF_DIGITISH = "0123456789LMNPQRSTUV"


def it_fiscal_code_char(first15: str) -> str:
    """The check letter of an Italian codice fiscale."""
    total = sum(_CF_ODD[c] if i % 2 == 0 else _CF_EVEN[c] for i, c in enumerate(first15))
    return chr(65 + total % 26)


def it_fiscal_code(s: str) -> bool:
    """Italian codice fiscale: layout (with omocodia letters) and the check letter."""
    v = s.upper()
    if len(v) != 16 or not v.isascii() or not v[:6].isalpha() or v[8] not in _CF_MONTHS:
        return False
    if any(v[i] not in _CF_DIGITISH for i in (6, 7, 9, 10, 12, 13, 14)) or not v[11].isalpha():
        return False
    return it_fiscal_code_char(v[:15]) == v[15]


def nl_bsn(s: str) -> bool:
    """Dutch BSN: 9 digits passing the 11-proof (weights 9..2, -1)."""
    d = digits_of(s)
    if len(d) == 8:
        d = "0" + d
    if len(d) != 9 or len(set(d)) == 1:
        return False
    total = sum(int(c) * w for c, w in zip(d, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
    return total % 11 == 0


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_VERHOEFF_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_ok(number: str) -> bool:
    """Whether the digit string passes the Verhoeff check."""
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return c == 0


def verhoeff_digit(partial: str) -> str:
    """The Verhoeff check digit to append to ``partial``."""
    c = 0
    for i, ch in enumerate(reversed(partial)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[(i + 1) % 8][ord(ch) - 48]]
    return str(_VERHOEFF_INV[c])


def in_aadhaar(s: str) -> bool:
    """Indian Aadhaar: 12 digits, first not 0/1, not a palindrome-like repeat, Verhoeff-valid."""
    d = digits_of(s)
    return len(d) == 12 and d[0] not in "01" and len(set(d)) > 2 and verhoeff_ok(d)


def br_cpf_digits(first9: str) -> str:
    """The two CPF check digits for the first nine digits."""
    d = [int(c) for c in first9]
    for n in (10, 11):
        r = sum(x * w for x, w in zip(d, range(n, 1, -1), strict=False)) * 10 % 11
        d.append(0 if r == 10 else r)
    return f"{d[9]}{d[10]}"


def br_cpf(s: str) -> bool:
    """Brazilian CPF: 11 digits, not all equal, two mod-11 check digits."""
    d = digits_of(s)
    return len(d) == 11 and len(set(d)) > 1 and br_cpf_digits(d[:9]) == d[9:]


# --------------------------------------------------------------------------- network


def ipv4(s: str) -> bool:
    """A dotted-quad IPv4 address without leading zeros."""
    parts = s.split(".")
    if len(parts) != 4:
        return False
    return all(p.isdigit() and p.isascii() and (len(p) == 1 or p[0] != "0") and int(p) <= 255 for p in parts)


def ipv6(s: str) -> bool:
    """An IPv6 address (``ipaddress`` rules) with at least three non-empty groups."""
    if s.count(":") < 2 or sum(1 for g in s.split(":") if g) < 3:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- e-mail and phone


def email(s: str) -> bool:
    """An e-mail address: sane local part, a domain with a letter TLD that is not a file type."""
    local, _, domain = s.rpartition("@")
    if not local or not domain or local[0] == "." or local[-1] == "." or ".." in local:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or any(not lab or lab[0] == "-" or lab[-1] == "-" for lab in labels):
        return False
    tld = labels[-1].lower()
    return tld.isalpha() and tld not in _FILE_TLDS


_FILE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "pdf", "js", "ts", "py", "css", "map"})

# ITU-T E.164 country calling codes (1–3 digits).
_CC_TEXT = (
    "1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 "
    "81 82 84 86 90 91 92 93 94 95 98 211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 "
    "233 234 235 236 237 238 239 240 241 242 243 244 245 246 248 249 250 251 252 253 254 255 256 257 258 260 "
    "261 262 263 264 265 266 267 268 269 290 291 297 298 299 350 351 352 353 354 355 356 357 358 359 370 371 "
    "372 373 374 375 376 377 378 380 381 382 383 385 386 387 389 420 421 423 500 501 502 503 504 505 506 507 "
    "508 509 590 591 592 593 594 595 596 597 598 599 670 672 673 674 675 676 677 678 679 680 681 682 683 685 "
    "686 687 688 689 690 691 692 850 852 853 855 856 880 886 960 961 962 963 964 965 966 967 968 970 971 972 "
    "973 974 975 976 977 992 993 994 995 996 998"
)
_CC = frozenset(_CC_TEXT.split(" "))


def country_code(digits: str) -> str | None:
    """The E.164 country calling code that prefixes ``digits``, if any."""
    for n in (1, 2, 3):
        if digits[:n] in _CC:
            return digits[:n]
    return None


def nanp_ok(ten: str) -> bool:
    """North American Numbering Plan: NPA and NXX start with 2–9 and are not N11 codes."""
    if len(ten) != 10:
        return False
    npa, nxx = ten[:3], ten[3:6]
    return npa[0] >= "2" and nxx[0] >= "2" and npa[1:] != "11" and nxx[1:] != "11" and len(set(ten)) > 2


def phone(s: str) -> bool:
    """A plausible phone number: E.164 (+CC, 8–15 digits), NANP rules, or a 0-prefixed national number."""
    d = digits_of(s)
    if len(set(d)) <= 2:
        return False
    body = s.strip()
    if body.startswith("+") or body.startswith("00"):
        if body.startswith("00"):
            d = d[2:]
        cc = country_code(d)
        if cc is None or not 8 <= len(d) <= 15:
            return False
        return nanp_ok(d[1:]) if cc == "1" else len(d) - len(cc) >= 6
    if len(d) == 11 and d[0] == "1":
        return nanp_ok(d[1:])
    if len(d) == 10 and d[0] != "0":
        return nanp_ok(d)
    return d[0] == "0" and d[1] != "0" and 9 <= len(d) <= 12


# --------------------------------------------------------------------------- secrets

_PLACEHOLDER_WORDS = ("example", "xxxx", "your", "changeme", "change_me", "placeholder", "redacted", "dummy",
                      "sample", "replace", "insert", "secret_here", "token_here", "key_here", "<", ">", "${",
                      "{{", "%(", "****", "...", "env(", "environ", "getenv", "process.env", "none", "null",
                      "undefined", "password", "passwd", "true", "false")


def looks_placeholder(value: str) -> bool:
    """A value that is a placeholder, a variable reference or a masked value rather than a secret."""
    v = value.lower()
    return any(w in v for w in _PLACEHOLDER_WORDS) or len(set(v)) <= 3


def password(s: str) -> bool:
    """A password value: not a placeholder/variable, 6+ characters, 2+ character classes."""
    if len(s) < 6 or looks_placeholder(s) or s[0] in "$%@&*(" or "(" in s:
        return False
    classes = sum((any(c.islower() for c in s), any(c.isupper() for c in s), any(c.isdigit() for c in s),
                   any(not c.isalnum() for c in s)))
    return classes >= 2


def _hexlike(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


def high_entropy(s: str) -> bool:
    """A random-looking token: ≥16 chars with letters and digits, not a placeholder, high entropy.

    The threshold grows with length up to 3.0 bits/char for hex and 3.5 for other alphabets.
    """
    if len(s) < 16 or looks_placeholder(s):
        return False
    if not any(c.isdigit() for c in s) or not any(c.isalpha() for c in s):
        return False
    scale = math.log2(len(s))
    limit = min(3.0, 0.75 * scale) if _hexlike(s) else min(3.5, 0.8 * scale)
    return shannon_entropy(s) >= limit


def token_entropy(s: str) -> bool:
    """A provider token whose random part is not a placeholder (``sk-xxxx…``, ``…EXAMPLE``)."""
    tail = s.split("_")[-1] if s.startswith(("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "npm_")) else s
    return not looks_placeholder(tail) and shannon_entropy(tail) >= 3.0


def _b64url_json(part: str) -> object:
    pad = "=" * (-len(part) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(part + pad))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def jwt(s: str) -> bool:
    """A JWT: three dot-separated base64url parts whose header is JSON with an ``alg``."""
    parts = s.split(".")
    if len(parts) != 3:
        return False
    header = _b64url_json(parts[0])
    return isinstance(header, dict) and isinstance(header.get("alg"), str) and isinstance(_b64url_json(parts[1]),
                                                                                            dict)


def credential_url(s: str) -> bool:
    """A URL carrying ``user:password@``, where the password is not a placeholder."""
    _, _, rest = s.partition("://")
    userinfo, at, _ = rest.rpartition("@")
    user, colon, pw = userinfo.partition(":")
    return bool(at and colon and user and pw) and not looks_placeholder(pw)


def always(s: str) -> bool:
    """No validation beyond the pattern itself."""
    return True


# --------------------------------------------------------------------------- example values

_EXAMPLE_EMAIL_TLDS = frozenset({"test", "example", "invalid", "localhost"})
_EXAMPLE_EMAIL_DOMAINS = frozenset({"example.com", "example.org", "example.net", "domain.com", "email.com",
                                    "yourdomain.com", "yourcompany.com", "company.com", "acme.com"})


def email_example(s: str) -> bool:
    """Reserved (RFC 2606/6761) or boilerplate documentation domains."""
    domain = s.rpartition("@")[2].lower()
    return domain in _EXAMPLE_EMAIL_DOMAINS or domain.rsplit(".", 1)[-1] in _EXAMPLE_EMAIL_TLDS or any(
        domain.endswith("." + d) for d in _EXAMPLE_EMAIL_DOMAINS)


def phone_example(s: str) -> bool:
    """Fictional numbers: NANP 555-0100…0199, UK Ofcom drama ranges (07700 900xxx, 020 7946 0xxx …)."""
    d = digits_of(s)
    if d.startswith("1") and len(d) == 11:
        d = d[1:]
    if len(d) == 10 and d[3:7] in {"5550"} and d[6:8] == "01":
        return True
    if d.startswith("44"):
        d = "0" + d[2:]
    return d.startswith(("07700900", "02079460", "01134960", "01214960", "01314960", "01614960", "02890180",
                         "02920180", "01632960", "08081570", "09098790", "03069990"))


_DOC_V4 = (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("198.51.100.0/24"),
           ipaddress.ip_network("203.0.113.0/24"))
_DOC_V6 = ipaddress.ip_network("2001:db8::/32")


def ipv4_example(s: str) -> bool:
    """Loopback, unspecified, broadcast, and the RFC 5737 documentation networks."""
    a = ipaddress.IPv4Address(s)
    return a.is_loopback or a.is_unspecified or str(a) == "255.255.255.255" or any(a in n for n in _DOC_V4)


def ipv6_example(s: str) -> bool:
    """Loopback, unspecified and the RFC 3849 documentation prefix."""
    a = ipaddress.IPv6Address(s)
    return a.is_loopback or a.is_unspecified or a in _DOC_V6


EXAMPLE_CHECKS: dict[str, Callable[[str], bool]] = {
    "email": email_example,
    "ipv4": ipv4_example,
    "ipv6": ipv6_example,
    "phone": phone_example,
}


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "always": always,
    "br_cpf": br_cpf,
    "credential_url": credential_url,
    "credit_card": credit_card,
    "de_tax_id": de_tax_id,
    "email": email,
    "es_dni": es_dni,
    "fr_nir": fr_nir,
    "high_entropy": high_entropy,
    "iban": iban,
    "in_aadhaar": in_aadhaar,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "it_fiscal_code": it_fiscal_code,
    "jwt": jwt,
    "nl_bsn": nl_bsn,
    "password": password,
    "phone": phone,
    "token_entropy": token_entropy,
    "uk_nino": uk_nino,
    "us_ssn": us_ssn,
}
