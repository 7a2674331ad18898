"""Options documents and launch options: shapes, types, limits, every problem at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigdata_paas.errors import ValidationError
from bigdata_paas.rendering import (
    check_options_document,
    merge_options,
    option_defaults,
    option_types,
    validate_options_document,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

DOC = {
    "required": {"slaves.number": 3},
    "optional": {"slaves.cpu": 2, "ratio": 0.5, "debug": False},
    "advanced": {"image": "cdh:5.7.2"},
    "descriptions": {"slaves.number": "Number of slaves"},
    "limits": {
        "slaves.number": {"min": 1, "max": 10},
        "ratio": {"min": 0, "max": 1},
        "image": {"choices": ["cdh:5.7.2", "cdh:5.8.0"]},
    },
}


def problems_of(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {p["field"]: p["message"] for p in exc.value.problems}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, {"required": {}, "optional": {}, "advanced": {}, "descriptions": {}, "limits": {}}),
        (
            {"required": {"size": 2}},
            {
                "required": {"size": 2},
                "optional": {},
                "advanced": {},
                "descriptions": {},
                "limits": {},
            },
        ),
        (DOC, DOC),
        (
            {"optional": {"a.b_c.d9": "x", "_x": True, "n": -1.5}},
            {
                "required": {},
                "optional": {"a.b_c.d9": "x", "_x": True, "n": -1.5},
                "advanced": {},
                "descriptions": {},
                "limits": {},
            },
        ),
    ],
)
def test_valid_documents_are_normalized(doc: dict, expected: dict) -> None:
    assert validate_options_document(doc) == expected


def test_normalized_document_is_a_copy() -> None:
    doc = {"required": {"size": 2}}
    out = validate_options_document(doc)
    out["required"]["size"] = 5
    assert doc["required"]["size"] == 2


@pytest.mark.parametrize("name", ["gluster/3.7.11", "cdh/5.7.2"])
def test_example_documents_are_valid(name: str) -> None:
    doc = json.loads((EXAMPLES / name / "options.json").read_text())
    assert validate_options_document(doc)["required"] == doc["required"]


@pytest.mark.parametrize(
    ("doc", "kind"),
    [(None, "null"), ([], "list"), ("x", "string"), (3, "integer"), (True, "boolean")],
)
def test_document_must_be_an_object(doc: object, kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_options_document(doc)
    assert problems_of(exc) == {"": f"options must be a JSON object, got {kind}"}


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        "required": {"slaves": 1, "slaves.number": 2, "bad name": 1, "x" * 101: 1},
        "optional": {"slaves.cpu": [1, 2], "nothing": None, "slaves": 3, "conf": {"a": 1}},
        "advanced": "oops",
        "descriptions": {"ghost": "who?", "slaves": 7},
        "limits": {
            "ghost": {"min": 1},
            "slaves": {"min": 5, "max": 2, "step": 1},
            "slaves.number": {"choices": [1, "two"]},
        },
        "extra": {},
    }
    with pytest.raises(ValidationError) as exc:
        validate_options_document(doc)
    problems = problems_of(exc)
    assert problems["optional.slaves.cpu"] == (
        "default must be an integer, number, boolean or string, got list"
    )
    assert problems["optional.nothing"].endswith("got null")
    assert problems["optional.conf"].endswith("got object")
    assert problems["optional.slaves"] == "option is also declared in required"
    assert "both an option and the prefix" in problems["required.slaves.number"]
    assert "dotted identifiers" in problems["required.bad name"]
    assert "longer than 100" in problems["required." + "x" * 100 + "..."]
    assert problems["advanced"] == "must be an object, got string"
    assert "descriptions.ghost" not in problems  # a stale description is only a warning
    assert problems["descriptions.slaves"] == "must be a string, got integer"
    assert problems["limits.ghost"] == "limits an undeclared option"
    assert problems["limits.slaves.step"].startswith("unknown limit")
    assert problems["limits.slaves"] == "min (5) is greater than max (2)"
    assert "like the default" in problems["limits.slaves.number.choices[1]"]
    assert problems["extra"].startswith("unknown section")
    assert len(exc.value.problems) == 14


def test_a_stale_description_is_a_warning_and_left_out() -> None:
    doc = {
        "required": {"slaves.number": 2},
        "descriptions": {
            "slaves.number": "Number of slaves",
            "slaves.disks": "Number of disks per slave",
            "old": 7,
        },
    }
    normalized, warnings = check_options_document(doc)
    assert normalized["descriptions"] == {"slaves.number": "Number of slaves"}
    assert warnings == [
        {
            "field": "descriptions.slaves.disks",
            "message": "describes an undeclared option; left out",
        },
        {"field": "descriptions.old", "message": "describes an undeclared option; left out"},
    ]
    assert validate_options_document(doc) == normalized
    assert check_options_document(normalized) == (normalized, [])


@pytest.mark.parametrize(
    ("limits", "field", "message"),
    [
        ({"n": {"min": 5}}, "limits.n", "the default does not fit: must be >= 5, got 3"),
        ({"n": {"max": 2}}, "limits.n", "the default does not fit: must be <= 2, got 3"),
        (
            {"n": {"choices": [1, 2]}},
            "limits.n",
            "the default does not fit: must be one of 1, 2; got 3",
        ),
        ({"n": {"choices": []}}, "limits.n.choices", "must be a non-empty list"),
        (
            {"n": {"choices": [True]}},
            "limits.n.choices[0]",
            "must be an integer like the default, got true",
        ),
        ({"n": {"min": "1"}}, "limits.n.min", 'must be a finite number, got "1"'),
        ({"n": {"max": True}}, "limits.n.max", "must be a finite number, got true"),
        (
            {"s": {"min": 1}},
            "limits.s.min",
            "only numeric options can have min; this option is a string",
        ),
        (
            {"b": {"max": 1}},
            "limits.b.max",
            "only numeric options can have max; this option is a boolean",
        ),
        ({"n": [1, 2]}, "limits.n", "must be an object, got list"),
    ],
)
def test_limit_problems(limits: dict, field: str, message: str) -> None:
    doc = {"required": {"n": 3, "s": "x", "b": True}, "limits": limits}
    with pytest.raises(ValidationError) as exc:
        validate_options_document(doc)
    assert problems_of(exc) == {field: message}


@pytest.mark.parametrize(
    ("default", "message"),
    [
        (float("nan"), "default must be a finite number, got nan"),
        ("x" * 10_001, "default must be at most 10000 characters, got 10001"),
    ],
)
def test_default_values_are_bounded(default: object, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_options_document({"optional": {"v": default}})
    assert problems_of(exc) == {"optional.v": message}


def test_too_many_options() -> None:
    doc = {
        "required": {f"o{i}": i for i in range(300)},
        "optional": {f"p{i}": i for i in range(201)},
    }
    with pytest.raises(ValidationError) as exc:
        validate_options_document(doc)
    assert problems_of(exc) == {"": "too many options: 501; the maximum is 500"}


@pytest.mark.parametrize("name", ["1abc", "a..b", "a.", ".a", "a-b", "a.1b", "a b", "a\n"])
def test_bad_option_names(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_options_document({"required": {name: 1}})
    assert list(problems_of(exc)) == [f"required.{name}"]


def test_defaults_and_types() -> None:
    doc = validate_options_document(DOC)
    assert option_defaults(doc) == {
        "slaves.number": 3,
        "slaves.cpu": 2,
        "ratio": 0.5,
        "debug": False,
        "image": "cdh:5.7.2",
    }
    assert option_types(doc) == {
        "slaves.number": "integer",
        "slaves.cpu": "integer",
        "ratio": "number",
        "debug": "boolean",
        "image": "string",
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, {}),
        ({"slaves.number": 5}, {"slaves.number": 5}),
        ({"ratio": 1}, {"ratio": 1}),  # an integer is a number
        ({"ratio": 0.25, "debug": True}, {"ratio": 0.25, "debug": True}),
        ({"image": "cdh:5.8.0", "slaves.cpu": 64}, {"image": "cdh:5.8.0", "slaves.cpu": 64}),
    ],
)
def test_merge_overrides_defaults(values: dict, expected: dict) -> None:
    doc = validate_options_document(DOC)
    merged = merge_options(doc, values)
    assert merged == {**option_defaults(doc), **expected}
    assert list(merged) == list(option_defaults(doc))


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"slaves.number": True}, "slaves.number", "must be an integer, got true"),
        ({"slaves.number": 2.0}, "slaves.number", "must be an integer, got 2.0"),
        ({"slaves.number": "3"}, "slaves.number", 'must be an integer, got "3"'),
        ({"slaves.number": None}, "slaves.number", "must be an integer, got null"),
        ({"slaves.number": 1_000_000_000}, "slaves.number", "must be <= 10, got 1000000000"),
        ({"slaves.number": 0}, "slaves.number", "must be >= 1, got 0"),
        ({"ratio": False}, "ratio", "must be a number, got false"),
        ({"ratio": 1.5}, "ratio", "must be <= 1, got 1.5"),
        ({"ratio": float("inf")}, "ratio", "must be a finite number, got inf"),
        ({"debug": 1}, "debug", "must be a boolean, got 1"),
        ({"image": 5}, "image", "must be a string, got 5"),
        ({"image": ["a"]}, "image", "must be a string, got a list"),
        ({"image": "other"}, "image", 'must be one of "cdh:5.7.2", "cdh:5.8.0"; got "other"'),
        ({"slaves.numbr": 3}, "slaves.numbr", "unknown option; did you mean 'slaves.number'?"),
        ({"zzz": 3}, "zzz", "unknown option"),
    ],
)
def test_merge_problems(values: dict, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        merge_options(validate_options_document(DOC), values)
    assert problems_of(exc) == {field: message}


def test_merge_reports_every_problem() -> None:
    values = {"slaves.number": True, "ratio": "x", "nope": 1, "image": "other"}
    with pytest.raises(ValidationError) as exc:
        merge_options(validate_options_document(DOC), values)
    assert sorted(problems_of(exc)) == ["image", "nope", "ratio", "slaves.number"]
    assert exc.value.to_dict()["details"]["problems"] == exc.value.problems


def test_merge_string_length() -> None:
    doc = validate_options_document({"optional": {"s": ""}})
    assert merge_options(doc, {"s": "x" * 10_000})["s"] == "x" * 10_000
    with pytest.raises(ValidationError) as exc:
        merge_options(doc, {"s": "x" * 10_001})
    assert problems_of(exc) == {"s": "must be at most 10000 characters, got 10001"}


@pytest.mark.parametrize("values", [None, [], "size=2", 3])
def test_merge_needs_an_object(values: object) -> None:
    with pytest.raises(ValidationError) as exc:
        merge_options(validate_options_document(DOC), values)
    assert list(problems_of(exc)) == [""]


def test_merge_caps_the_problem_list() -> None:
    with pytest.raises(ValidationError) as exc:
        merge_options(validate_options_document(DOC), {f"k{i}": 1 for i in range(1000)})
    assert len(exc.value.problems) == 201
    assert exc.value.problems[-1]["message"] == "and 800 more problems"
