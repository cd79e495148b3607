"""A small built-in list of common English words, used to tell decoded text from noise.

The list holds everyday function words and verbs plus the vocabulary that instructions to a model
use ("ignore", "instructions", "system", "reveal"...). rot13, Caesar shifts, Atbash, reversed text
and scrambled words (typoglycemia: inner letters shuffled, first and last kept) are only decoded when
the decoding holds clearly more of these words than the input.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from functools import cache
from typing import TypeVar

_V = TypeVar("_V")

_WORDS = """
a about above after again against all also always am an and any are as ask at be because been
before being below between both but by can cannot could did do does doing done down during each
even ever every few for from further get give go going had has have having he her here hers
herself him himself his how however i if in into is it its itself just know let like make many
may me might more most must my myself need never new no nor not now of off on once one only or
other our ours ourselves out over own please same say see she should so some still such take
than that the their theirs them themselves then there these they this those through to too
under until up upon us use very want was way we well were what when where which while who whom
why will with without would yes yet you your yours yourself yourselves
able access account act action actually add address admin advice again age agent ago allow
allowed already although always amount another answer anyone anything anyway area around
assistant attack available away back bad based become before begin behind believe best better
big bit black blue body book bot boy break bring build business buy call came car care case
cause certain change chat check child children city class clear close code come command company
complete computer confidential consider content context continue control copy correct cost
could country course create credit current data day dear decode delete describe detail
developer different direct disable disregard document does dog door draw drug during early
easy eat email end enough enter error especially evening everyone everything example except
execute explain eye face fact family far fast feel file filter find fine first follow food
forget form forward found free friend full fun future game gave general girl given go god
good got great group guide hand happen happy hard have head hear heart help hidden high history
hold home hope hour house human idea ignore important include information inside instead
instruction instructions internet issue job keep key kill kind knew know known language large
last late later law learn least leave left less letter level life light likely line list
listen little live long look lot love low made main man mean message mind minute mode model
moment money month morning mother move much music name national nature near necessary network
next nice night nobody normal nothing number often oh ok okay old open order original output
override page paper part party pass password past pay people perhaps person phone picture
place plan play point policy possible post power present pretend previous price print prior
private problem program prompt provide public put question quite rather read ready real really
reason receive remember remove reply report request response restriction restrictions result
return reveal right room rule rules run safe safety said saw school second secret security
seem send sense sentence service set several share short show side simple since site small
social someone something sometimes soon sorry sound speak special start state stop story
street strong student study sure system table talk task teach tell term test text thank
thanks thing things think though thought three time today together told tomorrow took tool
top toward true trust try turn two type understand unless unlock unrestricted user usual value
version view voice wait walk water week weight went whatever whole woman word words work
world write wrong year years yesterday young
hello hack hacker hacking jailbreak exploit malware virus weapon weapons bomb steal root shell
bypass jailbroken uncensored unfiltered evil illegal dangerous harmful forbidden restricted
credentials token tokens api passwords secrets confidential leak admin administrator sudo
"""


@cache
def common_words() -> frozenset[str]:
    """The built-in common English words (lowercase)."""
    return frozenset(_WORDS.split())


def _unambiguous(pairs: Iterable[tuple[str, _V]]) -> dict[str, _V]:
    """``key -> value`` from ``pairs``, without the keys paired with two different values."""
    seen: dict[str, _V] = {}
    clash: set[str] = set()
    for key, value in pairs:
        if key in seen and seen[key] != value:
            clash.add(key)
        seen[key] = value
    for key in clash:
        del seen[key]
    return seen


def _shift(word: str, k: int) -> str:
    return "".join(chr((ord(c) - 97 + k) % 26 + 97) for c in word)


@cache
def shifted_words() -> dict[str, int]:
    """Common words (3+ letters) Caesar-shifted by 1..25 -> the shift that decodes them.

    Shifted forms that are themselves common words or that several shifts share are left out.
    """
    common = common_words()
    return _unambiguous((s, 26 - k) for w in common if len(w) >= 3
                        for k in range(1, 26) if (s := _shift(w, k)) not in common)


@cache
def reversed_words() -> frozenset[str]:
    """Common words (3+ letters) spelt backwards, minus palindromes and words that stay words."""
    common = common_words()
    return frozenset(w[::-1] for w in common if len(w) >= 3 and w[::-1] not in common)


_ATBASH = {c: 219 - c for c in range(97, 123)} | {c: 155 - c for c in range(65, 91)}


def atbash(text: str) -> str:
    """Mirror the ASCII alphabet (a <-> z, b <-> y ...), the Atbash cipher; its own inverse."""
    return text.translate(_ATBASH)


@cache
def atbash_words() -> frozenset[str]:
    """Common words (3+ letters) in Atbash, minus those that are themselves common words."""
    common = common_words()
    return frozenset(w for w in (atbash(c) for c in common if len(c) >= 3) if w not in common)


def caesar(text: str, k: int) -> str:
    """Shift the ASCII letters of ``text`` by ``k`` (rot13 is ``k=13``)."""
    return text.translate(_caesar_table(k % 26))


@cache
def _caesar_table(k: int) -> dict[int, int]:
    table = {c: (c - 97 + k) % 26 + 97 for c in range(97, 123)}
    table.update({c: (c - 65 + k) % 26 + 65 for c in range(65, 91)})
    return table


_SCRAMBLE_MAX = 7    # words up to this length get every inner-letter order listed (at most 5! = 120 each)


def scramble_key(word: str) -> str:
    """First letter, last letter and the sorted inner letters: equal for a word and its scramblings."""
    return word[0] + word[-1] + "".join(sorted(word[1:-1]))


@cache
def scrambled_words() -> dict[str, str]:
    """Every inner-letter shuffle of the common words of 4 to 7 letters -> that word.

    Shuffles that are themselves common words or that two words share are left out. Its keys intersect
    a text's words at C speed (three hits make a text worth descrambling) and look up short words.
    """
    common = common_words()
    return _unambiguous((form, w) for w in common if 4 <= len(w) <= _SCRAMBLE_MAX
                        for p in itertools.permutations(w[1:-1])
                        if (form := w[0] + "".join(p) + w[-1]) != w and form not in common)


@cache
def unscramble_table() -> dict[str, str]:
    """:func:`scramble_key` -> the one common word (4+ letters) with that key; keys two words share are left out."""
    return _unambiguous((scramble_key(w), w) for w in common_words() if len(w) >= 4)
