"""Reversible redaction: exact round trips, stable placeholders, no collisions, vault expiry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aimds.detect.entities import Entity, find_entities
from aimds.respond.redact import MemoryVault, redact, restore
from aimds.types import Category

CARD = "4539 9458 0730 2151"
MAIL = "jane.doe@gmail.com"


def ent(typ: str, start: int, end: int) -> Entity:
    return Entity(typ, Category.PII, start, end, 0.9, f"pii.{typ}")


def test_basic_redaction_and_restore() -> None:
    vault = MemoryVault()
    text = f"mail {MAIL} and card {CARD}; again {MAIL}"
    red = redact(text, find_entities(text), vault)
    assert red.text == "mail <EMAIL_1> and card <CREDIT_CARD_1>; again <EMAIL_1>"
    assert MAIL not in red.text and CARD not in red.text
    answer = "I will email <EMAIL_1> about card <credit_card_1>."
    assert restore(answer, vault, red.scope) == f"I will email {MAIL} about card {CARD}."


def test_same_value_same_placeholder_across_turns() -> None:
    vault = MemoryVault()
    first = redact(f"hi {MAIL}", find_entities(f"hi {MAIL}"), vault)
    text = f"other bob.k@proton.me then {MAIL}"
    second = redact(text, find_entities(text), vault, scope=first.scope)
    assert second.text == "other <EMAIL_2> then <EMAIL_1>"
    assert restore(second.text, vault, first.scope) == text
    assert restore(first.text, vault, first.scope) == f"hi {MAIL}"


def test_placeholder_lookalikes_in_input_do_not_collide() -> None:
    vault = MemoryVault()
    text = f"literal <EMAIL_1> and <email_2> and real {MAIL}"
    red = redact(text, find_entities(text), vault)
    assert "<EMAIL_1>" not in red.text.replace("<EMAIL_1>", "", 1)  # only the real one
    assert restore(red.text, vault, red.scope) == text
    # the model repeating the escaped literal gets the literal back, not the e-mail
    lit = [p for p in red.placeholders if p.startswith("<LITERAL_")]
    assert restore(lit[0], vault, red.scope) == "<EMAIL_1>"


def test_unknown_scope_and_unknown_placeholder_left_alone() -> None:
    vault = MemoryVault()
    red = redact(MAIL, find_entities(MAIL), vault)
    assert restore("<EMAIL_1>", vault, "nope") == "<EMAIL_1>"
    assert restore("<EMAIL_9> <EMAIL_1>", vault, red.scope) == f"<EMAIL_9> {MAIL}"


def test_overlapping_and_out_of_range_entities() -> None:
    vault = MemoryVault()
    text = "abcdefghij"
    red = redact(text, [ent("a", 1, 4), ent("b", 3, 6), ent("c", 8, 50), ent("d", 5, 5)], vault)
    assert red.text == "a<A_1>gh<C_1>"
    assert restore(red.text, vault, red.scope) == text


def test_vault_ttl_and_lru() -> None:
    now = [0.0]
    vault = MemoryVault(max_scopes=2, clock=lambda: now[0])
    vault.put("s1", {"<X_1>": "v"}, ttl_s=10)
    assert vault.get("s1") == {"<X_1>": "v"}
    now[0] = 11
    assert vault.get("s1") == {}
    vault.put("a", {"<X_1>": "1"})
    vault.put("b", {"<X_1>": "2"})
    vault.put("c", {"<X_1>": "3"})
    assert vault.get("a") == {} and vault.get("c") == {"<X_1>": "3"} and len(vault) == 2


def test_nothing_to_redact_stores_nothing() -> None:
    vault = MemoryVault()
    red = redact("plain text", [], vault)
    assert red.text == "plain text" and not red.placeholders and len(vault) == 0


PIECES = st.sampled_from(["<EMAIL_1>", "<email_1>", "<CREDIT_CARD_1>", "<LITERAL_1>", "<", ">", "_1", "<X_",
                          MAIL, CARD, " ", "é", "\U0001f600", "abc", "12", "\ud800"])
TEXTS = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=20).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.lists(st.tuples(st.integers(-3, 80), st.integers(-3, 80), st.sampled_from(["email", "x", "literal"])),
                       max_size=6))
def test_round_trip_any_text_any_spans(text: str, spans: list[tuple[int, int, str]]) -> None:
    vault = MemoryVault()
    ents = [ent(t, s, e) for s, e, t in spans] + find_entities(text)
    red = redact(text, ents, vault)
    assert restore(red.text, vault, red.scope) == text
    # a second turn in the same scope keeps the first one restorable
    red2 = redact(text + " " + MAIL, find_entities(text + " " + MAIL), vault, scope=red.scope)
    assert restore(red2.text, vault, red.scope) == text + " " + MAIL
    assert restore(red.text, vault, red.scope) == text
