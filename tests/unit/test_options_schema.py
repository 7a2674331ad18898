"""The options as JSON Schema: derived from the document, and in agreement with the launch check.

A JSON Schema validator (jsonschema-rs, draft 2020-12) and ``merge_options`` must take and
refuse the same launch options: on every example service, on a table of edge cases, and on
generated documents with generated values. The one difference JSON Schema cannot state (2.0
is an integer there) is pinned down exactly.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import hypothesis
import jsonschema_rs
import pytest
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from bigdata_paas.errors import ValidationError
from bigdata_paas.rendering.options import (
    MAX_STRING_LENGTH,
    merge_options,
    option_defaults,
    option_types,
    validate_options_document,
)
from bigdata_paas.rendering.options_schema import DRAFT, options_schema

EXAMPLES = sorted(Path(__file__).resolve().parents[2].glob("examples/*/*/options.json"))


# Hypothesis keeps files (a cache of source constants) from the moment the tests are
# collected: out of the work tree, into a folder of its own that the module removes.
_HYPOTHESIS_HOME = Path(tempfile.mkdtemp(prefix="paas-hypothesis-"))
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


@pytest.fixture(scope="module", autouse=True)
def hypothesis_storage():
    yield
    set_hypothesis_home_dir(None)
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


def server_accepts(doc: dict, values) -> bool:
    try:
        merge_options(validate_options_document(doc), values)
    except ValidationError:
        return False
    return True


def schema_accepts(doc: dict, values) -> bool:
    return jsonschema_rs.Draft202012Validator(options_schema(doc)).is_valid(values)


def integral_floats_as_ints(doc: dict, values):
    """``values`` with 2.0 written 2 for integer options: the one thing JSON Schema cannot
    tell apart; None when nothing changes."""
    if not isinstance(values, dict):
        return None
    types = option_types(validate_options_document(doc))
    changed = {
        k: int(v)
        for k, v in values.items()
        if types.get(k) == "integer" and isinstance(v, float) and v.is_integer()
    }
    return {**values, **changed} if changed else None


def assert_agree(doc: dict, values) -> None:
    schema, server = schema_accepts(doc, values), server_accepts(doc, values)
    rewritten = integral_floats_as_ints(doc, values)
    if rewritten is None:
        assert schema == server, (doc, values, {"schema": schema, "server": server})
    else:
        # The launch refuses 2.0 for an integer; the schema judges it as the integer 2.
        assert not server, (doc, values)
        assert schema == server_accepts(doc, rewritten), (doc, values)


# -- the examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", EXAMPLES, ids=[str(p.parent.relative_to(p.parents[2])) for p in EXAMPLES]
)
def test_every_example_schema_accepts_its_defaults_and_refuses_a_wrong_type(path: Path):
    doc = json.loads(path.read_text())
    schema = options_schema(doc, title="example")
    assert jsonschema_rs.meta.is_valid(schema)
    validator = jsonschema_rs.Draft202012Validator(schema)
    defaults = option_defaults(validate_options_document(doc))
    assert validator.is_valid({})
    assert validator.is_valid(defaults)
    for name, default in defaults.items():
        assert validator.is_valid({name: default}), name
        wrong = "1" if not isinstance(default, str) else 1
        assert not validator.is_valid({name: wrong}), name
        assert not server_accepts(doc, {name: wrong}), name
    assert not validator.is_valid({"no.such.option": 1})
    assert len(EXAMPLES) >= 3


def test_gluster_schema_in_full():
    doc = json.loads((EXAMPLES[0].parents[2] / "gluster/3.7.11/options.json").read_text())
    schema = options_schema(doc, title="gluster 3.7.11 options")
    assert schema["$schema"] == DRAFT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "gluster 3.7.11 options"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert "required" not in schema  # every option has a default
    assert schema["x-groups"] == {
        "required": ["size", "disks"],
        "optional": ["cpu", "mem", "disk.type"],
        "advanced": ["volume.replica", "gluster.image", "network"],
    }
    assert schema["properties"]["size"] == {
        "type": "integer",
        "default": 2,
        "x-group": "required",
        "description": "Number of gluster server nodes",
        "minimum": 1,
        "maximum": 64,
    }
    assert schema["properties"]["disk.type"] == {
        "type": "string",
        "default": "hdd",
        "x-group": "optional",
        "description": "Type of the brick disks: hdd or ssd",
        "maxLength": MAX_STRING_LENGTH,
        "enum": ["hdd", "ssd"],
    }
    groups = schema["x-groups"]
    assert list(schema["properties"]) == [
        *groups["required"],
        *groups["optional"],
        *groups["advanced"],
    ]


# -- a table of edge cases ------------------------------------------------------------------

DOC = {
    "required": {"n": 2},
    "optional": {"ratio": 0.5, "debug": False, "image": "a"},
    "advanced": {"big": 10},
    "limits": {
        "n": {"min": 1, "max": 5},
        "ratio": {"min": 0, "max": 1},
        "image": {"choices": ["a", "b"]},
        "big": {"choices": [10, 20]},
    },
}


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"n": 1},
        {"n": 5},
        {"n": 0},
        {"n": 6},
        {"n": True},
        {"n": "2"},
        {"n": None},
        {"n": [2]},
        {"n": {"v": 2}},
        {"n": 2.5},
        {"n": 2.0},
        {"n": 10**30},
        {"ratio": 1},
        {"ratio": 0},
        {"ratio": 1.0000001},
        {"ratio": -0.0},
        {"ratio": False},
        {"debug": 0},
        {"debug": True},
        {"debug": "true"},
        {"image": "b"},
        {"image": "c"},
        {"image": ""},
        {"big": 20},
        {"big": 20.0},
        {"big": 15},
        {"big": True},
        {"nope": 1},
        {"n": 2, "nope": 1},
        [],
        "n=2",
        None,
        7,
    ],
    ids=repr,
)
def test_schema_and_launch_agree_on_edge_cases(values):
    assert_agree(DOC, values)


def test_long_strings_agree():
    doc = {"required": {"s": "x"}}
    assert_agree(doc, {"s": "x" * MAX_STRING_LENGTH})
    assert_agree(doc, {"s": "x" * (MAX_STRING_LENGTH + 1)})
    assert not schema_accepts(doc, {"s": "x" * (MAX_STRING_LENGTH + 1)})
    # characters, not bytes or UTF-16 units, on both sides
    assert_agree(doc, {"s": "\U0001f600" * MAX_STRING_LENGTH})


def test_the_one_difference_is_pinned():
    assert schema_accepts(DOC, {"n": 2.0})
    assert not server_accepts(DOC, {"n": 2.0})


# -- generated documents and values -----------------------------------------------------------

KINDS = ("integer", "number", "boolean", "string")
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
scalars = {
    "integer": st.integers(-(10**6), 10**6),
    "number": st.one_of(st.integers(-(10**6), 10**6), finite),
    "boolean": st.booleans(),
    "string": st.text(max_size=8),
}
any_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**12), 10**12),
        finite,
        st.text(max_size=6),
        st.sampled_from([2.0, -1.0, 0.0, "x" * (MAX_STRING_LENGTH + 1)]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def option(draw, kind: str):
    """(default, limits) of one option of ``kind`` (the type of its default: a float for a
    number)."""
    default = draw(finite if kind == "number" else scalars[kind])
    limits: dict = {}
    if kind in ("integer", "number") and draw(st.booleans()):
        if draw(st.booleans()):
            limits["min"] = default - draw(st.integers(0, 3))
        if draw(st.booleans()):
            limits["max"] = default + draw(st.integers(0, 3))
    elif draw(st.booleans()) and (kind != "boolean" or draw(st.booleans())):
        others = draw(st.lists(scalars[kind], max_size=3))
        limits["choices"] = [default, *others]
    return default, limits


@st.composite
def documents(draw):
    doc: dict = {"required": {}, "optional": {}, "advanced": {}, "limits": {}}
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(KINDS))
        default, limits = draw(option(kind))
        name = f"o{i}" if draw(st.booleans()) else f"g{i}.o"
        doc[draw(st.sampled_from(("required", "optional", "advanced")))][name] = default
        if limits:
            doc["limits"][name] = limits
    return doc


@st.composite
def cases(draw):
    """A document and launch values aimed at its options, their types and their limits."""
    doc = draw(documents())
    normalized = validate_options_document(doc)
    defaults, types = option_defaults(normalized), option_types(normalized)
    values: dict = {}
    for name in draw(st.lists(st.sampled_from(sorted(defaults)), unique=True)):
        limits = normalized["limits"].get(name, {})
        near = [
            v + d
            for v in (limits.get("min"), limits.get("max"))
            if v is not None
            for d in (-1, 0, 1)
        ]
        near += [
            *limits.get("choices", []),
            float(defaults[name])
            if types[name] != "string" and types[name] != "boolean"
            else defaults[name],
        ]
        values[name] = draw(st.one_of(scalars[types[name]], any_json, st.sampled_from(near)))
    if draw(st.integers(0, 4)) == 0:
        values[draw(st.text(max_size=5))] = draw(any_json)
    if draw(st.integers(0, 9)) == 0:
        return doc, draw(any_json)  # not even an object
    return doc, values


@hypothesis.settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
@hypothesis.given(cases())
def test_schema_and_launch_agree_on_generated_options(case):
    doc, values = case
    hypothesis.event("accepted" if server_accepts(doc, values) else "refused")
    assert_agree(doc, values)
