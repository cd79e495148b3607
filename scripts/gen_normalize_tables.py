"""Generate ``src/aimds/normalize/_tables.py``: the per-character fold table and class ranges.

Run with the project's Python (``python scripts/gen_normalize_tables.py``). The table is derived
from :mod:`unicodedata` (NFKC + casefold per code point, character names for styled letters) plus a
hand-written list of cross-script look-alikes. Nothing here is imported at run time; the generated
module is plain data. Re-run after a Python upgrade to pick up a newer Unicode version.
"""

from __future__ import annotations

import array
import base64
import sys
import unicodedata
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "aimds" / "normalize" / "_tables.py"

# Character class bits (keep in sync with aimds.normalize.fold).
WS_SPACE, WS_NL, INVIS, BIDI, TAG, SOFT, STYLED, MARK, CONF, FOREIGN, WORD, CHANGED = (1 << i for i in range(12))

BIDI_CONTROLS = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
# Removed but not suspicious by themselves: they occur in ordinary Indic, Persian, Arabic, Hebrew text
# and in emoji sequences. Counted as invisible only when they touch ASCII letters.
SOFT_INVISIBLE = [0x200C, 0x200D, 0x200E, 0x200F, 0x061C]
EXTRA_INVISIBLE = [
    0x034F,                    # combining grapheme joiner
    0x115F, 0x1160, 0x3164, 0xFFA0,  # Hangul fillers (render as nothing)
    0x17B4, 0x17B5,            # Khmer inherent vowels (invisible)
    0x180B, 0x180C, 0x180D, 0x180E, 0x180F,  # Mongolian variation selectors / vowel separator
    *range(0xFE00, 0xFE10),    # variation selectors
    *range(0xE0100, 0xE01F0),  # variation selectors supplement
    0x2800,                    # braille blank (handled as a space below)
]
SPACE_LIKE = [0x2800]
LINE_BREAKS = [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]
# Combining marks that, left on an ASCII letter after NFKC, are decoration ("zalgo"), not spelling.
MARK_RANGES = [(0x0300, 0x0370), (0x0483, 0x048A), (0x1AB0, 0x1B00), (0x1DC0, 0x1E00),
               (0x20D0, 0x2100), (0xFE20, 0xFE30)]

# Latin-script letters that no orthography needs and that imitate ASCII letters: always folded.
LATIN_LOOKALIKES = {
    "ɑ": "a", "ɡ": "g", "ɩ": "i", "ɪ": "i", "ʏ": "y", "ʀ": "r", "ɢ": "g", "ʜ": "h", "ʟ": "l",
    "ɴ": "n", "ʙ": "b", "ꞯ": "q", "ʠ": "q", "ɋ": "q", "ȷ": "j", "ɾ": "r", "ʋ": "u", "ɒ": "a",
    "ɔ": "c", "ꜱ": "s", "ꜰ": "f", "ꝛ": "r", "ꞅ": "s", "ſ": "s",
}

# Cross-script look-alikes, folded only inside words that mix them with ASCII letters.
# Keys are lowercase (after casefold); UPPER_ONLY holds capitals whose lowercase looks different.
CROSS_SCRIPT = {
    # Cyrillic
    "а": "a", "е": "e", "ё": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i",
    "ї": "i", "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "ɡ": "g", "г": "r", "п": "n", "ь": "b", "ѡ": "w", "ԍ": "g", "ӄ": "k", "ԃ": "d", "ӓ": "a",
    "ӧ": "o", "ӱ": "y", "ѵ": "v", "ԉ": "n",
    # Greek
    "α": "a", "γ": "y", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j", "ω": "w", "η": "n", "ί": "i", "ό": "o", "ύ": "u",
    "ϊ": "i", "ϋ": "u", "ά": "a", "έ": "e",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "զ": "q", "ա": "w", "ք": "p", "ɦ": "h",
    # Cherokee (lowercase forms; capitals casefold to these)
    "ꭺ": "a", "ꮟ": "b", "ꮯ": "c", "ꭰ": "d", "ꭼ": "e", "ꮐ": "g", "ꮋ": "h", "ꭻ": "j", "ꮶ": "k",
    "ꮮ": "l", "ꮇ": "m", "ꮲ": "p", "ꮪ": "s", "ꮤ": "w", "ꮃ": "w", "ꮓ": "z", "ꮩ": "v", "ꭱ": "r",
    "ꮢ": "r", "ꭲ": "t", "ꮖ": "i",
}
UPPER_ONLY = {
    "В": "b", "Н": "h", "К": "k", "М": "m", "Т": "t", "Ԁ": "d", "Ь": "b", "З": "3",
    "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Τ": "t",
    "Υ": "y", "Χ": "x", "Α": "a", "Ο": "o", "Ρ": "p",
    "Օ": "o", "Տ": "s", "Ս": "u", "Ո": "n", "Ւ": "l",
}
FOREIGN_SCRIPTS = ("CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC")
STYLED_WORDS = ("CIRCLED", "SQUARED", "PARENTHESIZED", "NEGATIVE", "MATHEMATICAL", "SMALL CAPITAL",
                "FULLWIDTH", "SUBSCRIPT", "SUPERSCRIPT", "MODIFIER LETTER", "DOUBLE-STRUCK",
                "BLACK-LETTER", "SCRIPT CAPITAL", "SCRIPT SMALL")


def styled_letter(cp: int, name: str) -> str | None:
    """ASCII letter or digit a styled code point stands for (circled, squared, small capital...)."""
    if not name or ("LATIN" not in name and "REGIONAL INDICATOR" not in name and "MATHEMATICAL" not in name):
        return None
    if name.startswith("TAG ") or name.startswith("LATIN CAPITAL LETTER") or name.startswith("LATIN SMALL"):
        return None
    words = name.split()
    if len(words) >= 2 and words[-2] in ("LETTER", "CAPITAL", "SMALL") and len(words[-1]) == 1 and words[-1].isalpha():
        return words[-1].lower()
    if len(words) >= 2 and words[-2] == "DIGIT" and words[-1] in DIGITS:
        return DIGITS[words[-1]]
    return None


_DIGIT_NAMES = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
DIGITS = {w: str(i) for i, w in enumerate(_DIGIT_NAMES)}


def main() -> None:
    fold: dict[int, str] = {}
    bits: dict[int, int] = {}

    def add_bits(cp: int, b: int) -> None:
        bits[cp] = bits.get(cp, 0) | b

    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        cat = unicodedata.category(c)
        name = unicodedata.name(c, "")
        if c.isspace():
            add_bits(cp, WS_NL if cp in LINE_BREAKS else WS_SPACE)
            if c not in " \n":
                fold[cp] = "\n" if cp in LINE_BREAKS else " "
            continue
        if cp in SPACE_LIKE:
            add_bits(cp, WS_SPACE | INVIS)
            fold[cp] = " "
            continue
        if 0xE0000 <= cp <= 0xE007F:
            add_bits(cp, TAG)
            fold[cp] = chr(cp - 0xE0000).lower() if 0x20 <= cp - 0xE0000 <= 0x7E else ""
            continue
        if cp in BIDI_CONTROLS:
            add_bits(cp, BIDI)
            fold[cp] = ""
            continue
        if cp in SOFT_INVISIBLE:
            add_bits(cp, SOFT)
            fold[cp] = ""
            continue
        if cp in EXTRA_INVISIBLE or cat == "Cf" or (cat == "Cc" and c not in "\t\n"):
            add_bits(cp, INVIS)
            fold[cp] = ""
            continue
        if cat[0] in "LMN":
            add_bits(cp, WORD)
        if any(lo <= cp < hi for lo, hi in MARK_RANGES) and cat.startswith("M"):
            add_bits(cp, MARK)
        if any(name.startswith(s + " ") for s in FOREIGN_SCRIPTS) and cat.startswith("L"):
            add_bits(cp, FOREIGN)
        out = unicodedata.normalize("NFKC", c).casefold()
        styled = styled_letter(cp, name)
        if c in LATIN_LOOKALIKES:
            out = LATIN_LOOKALIKES[c]
            add_bits(cp, STYLED)
        elif styled is not None and (cp > 0x7F):
            if any(w in name for w in STYLED_WORDS) and "FULLWIDTH" not in name and "REGIONAL" not in name:
                add_bits(cp, STYLED)
            out = styled
        if out != c:
            fold[cp] = out
    for table in (CROSS_SCRIPT, UPPER_ONLY):
        for ch in table:
            add_bits(ord(ch), CONF)
            folded = fold.get(ord(ch), ch)
            if len(folded) == 1:
                add_bits(ord(folded), CONF)

    for cp in fold:
        add_bits(cp, CHANGED)
    # Compress the class bits into ranges of equal value.
    ranges: list[tuple[int, int, int]] = []
    for cp in sorted(bits):
        b = bits[cp]
        if ranges and ranges[-1][1] == cp and ranges[-1][2] == b:
            ranges[-1] = (ranges[-1][0], cp + 1, b)
        else:
            ranges.append((cp, cp + 1, b))

    # Stored as a few long literals (not thousands of dict entries) so that importing the module
    # stays fast even where no bytecode cache is written.
    keys = sorted(fold)
    assert all("\x1f" not in fold[k] for k in keys)
    fold_keys = "".join(chr(k) for k in keys)
    fold_values = "\x1f".join(fold[k] for k in keys)
    flat = array.array("i", [x for r in ranges for x in r])
    if sys.byteorder == "big":
        flat.byteswap()                      # stored little-endian
    ranges_b64 = base64.b64encode(flat.tobytes()).decode("ascii")
    lines = [
        '"""Generated by scripts/gen_normalize_tables.py -- do not edit by hand."""',
        "",
        "# ruff: noqa: E501",
        "import array as _array",
        "import base64 as _base64",
        "import sys as _sys",
        "",
        f"UNICODE_VERSION = {unicodedata.unidata_version!r}",
        "",
        "# code point -> folded text (NFKC + casefold + styled letters + invisibles removed + tags decoded)",
        f"_FOLD_KEYS = {fold_keys!r}",
        f"_FOLD_VALUES = {fold_values!r}",
        'FOLD: dict[int, str] = dict(zip(map(ord, _FOLD_KEYS), _FOLD_VALUES.split("\\x1f"), strict=True))',
        "",
        "# (start, end, class bits) ranges, as little-endian int32 triples in base64",
        f"_RANGES = {ranges_b64!r}",
        '_FLAT = _array.array("i", _base64.b64decode(_RANGES))',
        'if _sys.byteorder == "big":',
        "    _FLAT.byteswap()",
        "CLASS_RANGES: tuple[tuple[int, int, int], ...] = tuple(",
        "    zip(_FLAT[0::3], _FLAT[1::3], _FLAT[2::3], strict=True)",
        ")",
        "",
        "# cross-script look-alikes (lowercase, after casefold) -> ASCII",
        f"CROSS_SCRIPT: dict[str, str] = {dict(sorted(CROSS_SCRIPT.items()))!r}",
        "",
        "# capitals whose lowercase looks different -> ASCII",
        f"UPPER_ONLY: dict[str, str] = {dict(sorted(UPPER_ONLY.items()))!r}",
        "",
    ]
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {OUT} ({len(fold)} folds, {len(ranges)} class ranges, Unicode {unicodedata.unidata_version})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
