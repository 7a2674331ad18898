"""One rule per kind of name: each accepts exactly what the platform accepted before.

The reference patterns are the ones each module carried before names.py gathered them; a
corpus of edge cases and random strings must be judged alike by both.
"""

from __future__ import annotations

import random
import re

import pytest

from bigdata_paas import names

INVENTORY = (
    names.HOST_NAME,
    names.NETWORK_NAME,
    names.INTERFACE_NAME,
    names.DISK_NAME,
    names.DISK_TYPE,
    names.LABEL_NAME,
)
SPEC = (names.NODE_NAME, names.NODE_DISK_NAME, names.NODE_DEVICE_NAME, names.SPEC_SERVICE_NAME)


def before_inventory(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z", text))


def before_spec(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", text))


#: (rule, the check it replaces)
BEFORE = [
    (names.SERVICE_NAME, lambda s: re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z", s)),
    (
        names.VERSION,
        lambda s: re.match(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}\Z", s) and ".." not in s,
    ),
    (names.USER_NAME, lambda s: re.match(r"^[a-z][a-z0-9_.-]{0,63}\Z", s)),
    *[(rule, before_inventory) for rule in INVENTORY],
    (names.HOST_ADDRESS, lambda s: re.match(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}\Z", s)),
    *[(rule, before_spec) for rule in SPEC],
    (
        names.OPTION_NAME,
        lambda s: re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", s),
    ),
    (names.IDEMPOTENCY_KEY, lambda s: re.fullmatch(r"[\x21-\x7e]{1,255}", s)),
]

EDGES = [
    "",
    "a",
    "A",
    "0",
    "_",
    "-",
    ".",
    "a\n",
    "\na",
    "a\nb",
    "a b",
    "a..b",
    "1.0",
    "1..0",
    "1.0+build-2",
    "a.b.c",
    "a.",
    ".a",
    "a_b",
    "x" * 63,
    "x" * 64,
    "x" * 65,
    "x" * 255,
    "x" * 256,
    "10.0.0.1",
    "fe80::1",
    "::1",
    "slaves.number",
    "slaves.1x",
    "é",
    "a\x00",
    "A-b_c.d",
    "Admin",
]


def corpus() -> list[str]:
    rng = random.Random(9)
    alphabet = "aZ09_.-+: \n\x00é"
    strings = list(EDGES)
    for _ in range(4000):
        length = rng.choice([1, 2, 3, 5, 8, 62, 63, 64, 65, 254, 255, 256])
        strings.append("".join(rng.choice(alphabet) for _ in range(length)))
        # mostly-valid strings with one odd character somewhere
        word = "a" * length
        i = rng.randrange(length)
        strings.append(word[:i] + rng.choice(alphabet) + word[i + 1 :])
    return strings


CORPUS = corpus()


@pytest.mark.parametrize(("rule", "before"), BEFORE, ids=lambda value: getattr(value, "kind", ""))
def test_each_rule_accepts_what_was_accepted_before(rule, before):
    for text in CORPUS:
        assert rule.matches(text) == bool(before(text)), (rule.kind, text)


def test_every_rule_is_covered_and_refuses_what_is_not_text():
    assert {rule for rule, _ in BEFORE} == set(names.RULES)
    for rule in names.RULES:
        for value in (None, 1, 1.5, True, ["a"], {"a": 1}, b"a"):
            assert not rule.matches(value)


@pytest.mark.parametrize("rule", names.RULES, ids=lambda rule: rule.kind)
def test_the_documented_pattern_says_the_same_for_text_without_newlines(rule):
    # JSON Schema patterns are ECMA regexes, where $ never matches before a final newline;
    # Python's $ does, so the comparison leaves newlines out.
    documented = re.compile(rule.pattern)
    for text in CORPUS:
        if "\n" not in text:
            assert bool(documented.search(text)) == rule.matches(text), (rule.kind, text)


def test_messages_say_what_is_expected():
    assert names.SERVICE_NAME.message.startswith("must be 1 to 64 letters")
    assert "'..'" in names.VERSION.message
    assert "lowercase" in names.USER_NAME.message
    assert "slaves.number" in names.OPTION_NAME.message
    assert names.instance_name("cdh", "0123456789abcdef") == "cdh-01234567"
