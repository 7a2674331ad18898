"""Sandboxed, isolated template rendering: both option styles, errors with lines, limits."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest

from bigdata_paas.errors import TemplateError
from bigdata_paas.rendering import (
    RenderLimits,
    check_syntax,
    codecache,
    instance_context,
    merge_options,
    render_spec,
    render_text,
    supervisor,
    validate_options_document,
    validate_spec,
)
from bigdata_paas.rendering.sandbox import TemplateEnvironment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MB = 1024 * 1024
FAST = RenderLimits(timeout=1.0)


def context(**options: object) -> dict:
    return instance_context(options, instance_id="c1", user="alice", service="cdh", version="5.7.2")


@pytest.fixture(autouse=True)
def no_zombies():
    """Every render reaps its child: nothing is left for waitpid after each test."""
    yield
    try:
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        pass


def test_instance_context_nests_dotted_names() -> None:
    ctx = context(**{"slaves.number": 3, "slaves.cpu": 2, "size": 1, "a.b.c": True})
    assert ctx["opts"] == {"slaves.number": 3, "slaves.cpu": 2, "size": 1, "a.b.c": True}
    assert ctx["slaves"] == {"number": 3, "cpu": 2}
    assert ctx["a"] == {"b": {"c": True}}
    assert ctx["size"] == 1
    assert (ctx["instancename"], ctx["clusterid"], ctx["clusterdn"]) == (
        "cdh-c1",
        "c1",
        "cdh-c1.alice",
    )
    assert (ctx["user"], ctx["service"], ctx["version"]) == ("alice", "cdh", "5.7.2")


def test_reserved_names_win_over_options() -> None:
    ctx = context(**{"user.name": "mallory", "opts.x": 1, "version": "9"})
    assert ctx["user"] == "alice"
    assert ctx["version"] == "5.7.2"
    assert ctx["opts"] == {"user.name": "mallory", "opts.x": 1, "version": "9"}


def test_clashing_names_stay_reachable_through_opts() -> None:
    ctx = context(**{"a": 1, "a.b": 2})
    assert ctx["a"] == 1
    assert ctx["opts"]["a.b"] == 2


RENDER_CASES = [
    ("{{ opts['slaves.number'] }}/{{ slaves.number }}", "3/3"),
    (
        "{{ instancename }} {{ clusterid }} {{ clusterdn }} {{ user }} {{ service }} {{ version }}",
        "cdh-c1 c1 cdh-c1.alice alice cdh 5.7.2",
    ),
    (
        '{% set comma = joiner(",") %}{% for i in range(3) %}{{ comma() }}{{ i }}{% endfor %}',
        "0,1,2",
    ),
    ("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}", "aba"),
    (
        "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}{{ ns.n }}",
        "6",
    ),
    ("{{ dict(a=1)|tojson }}", '{"a": 1}'),
    (
        "{{ 3 * 1024 }} {{ 2 ** 10 }} {{ 1024 ** 3 }} {{ 2 ** 0.5 > 1 }} {{ 'ab' * 3 }}",
        "3072 1024 1073741824 True ababab",
    ),
    ("{{ [1, 2] * 2 }} {{ 7 // 2 }} {{ 7 % 4 }} {{ 2 ** -1 }}", "[1, 2, 1, 2] 3 3 0.5"),
    ("{{ lipsum(1, html=False)|length > 0 }}", "True"),
    ("  {% if true %}\n  x\n  {% endif %}\n", "  \n  x\n  "),  # default whitespace kept
]


@pytest.mark.parametrize(("source", "expected"), RENDER_CASES)
def test_renders(source: str, expected: str) -> None:
    assert render_text(source, context(**{"slaves.number": 3}), limits=FAST) == expected


@pytest.mark.parametrize("name", ["gluster/3.7.11", "cdh/5.7.2"])
def test_example_templates_render_to_valid_specs(name: str) -> None:
    folder = EXAMPLES / name
    doc = validate_options_document(json.loads((folder / "options.json").read_text()))
    merged = merge_options(doc, {})
    spec = render_spec((folder / "service-template.json").read_text(), context(**merged))
    assert validate_spec(spec, max_nodes=100)["nodes"]


def test_render_spec_json_and_yaml() -> None:
    ctx = context(size=2)
    json_source = '{"nodes": {"n0": {"cpu": {{ size }}, "mem": 1024}}}'
    yaml_source = "nodes:\n  n0:\n    cpu: {{ size }}\n    mem: 1024\n    tags: [a, b]\n"
    assert render_spec(json_source, ctx, limits=FAST) == {"nodes": {"n0": {"cpu": 2, "mem": 1024}}}
    assert render_spec(yaml_source, ctx, fmt="yaml", limits=FAST) == {
        "nodes": {"n0": {"cpu": 2, "mem": 1024, "tags": ["a", "b"]}}
    }


def test_yaml_merge_keys_and_dates() -> None:
    source = "base: &b {cpu: 1}\nnode:\n  <<: *b\n  mem: 2\nwhen: 2020-01-02\n"
    assert render_spec(source, {}, fmt="yaml", limits=FAST) == {
        "base": {"cpu": 1},
        "node": {"cpu": 1, "mem": 2},
        "when": "2020-01-02",
    }


@pytest.mark.parametrize(
    ("source", "fmt", "line", "fragment"),
    [
        ('{\n  "a": 1\n  "b": 2\n}', "json", 3, "rendered template is not valid JSON: Expecting"),
        ("{\n}\n}", "json", 3, "rendered template is not valid JSON: Extra data"),
        ("", "json", 1, "rendered template is not valid JSON: Expecting value"),
        ('{"a": NaN}', "json", None, "NaN is not allowed"),
        ("a: 1\nb: c: d\nx: 1\n", "yaml", 2, "rendered template is not valid YAML"),
        ("a: &a [1, *a]\n", "yaml", None, "refers to itself"),
    ],
)
def test_unparsable_output(source: str, fmt: str, line: int | None, fragment: str) -> None:
    with pytest.raises(TemplateError) as exc:
        render_spec(source, {}, fmt=fmt, limits=FAST)
    assert exc.value.line == line
    assert fragment in exc.value.message


def test_yaml_alias_bomb_is_refused_quickly() -> None:
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        rows.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    started = time.monotonic()
    with pytest.raises(TemplateError, match="expands to more than"):
        render_spec("\n".join(rows) + "\n", {}, fmt="yaml", limits=FAST)
    assert time.monotonic() - started < 1.0


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        render_spec("{}", {}, fmt="xml")


CARRY_LINE_CASES = [
    ("line one\n{{ missing }}\n", 2, "'missing' is undefined"),
    ("a\nb\n{{ slaves.nope }}", 3, "has no attribute 'nope'"),
    (
        "{% for i in range(2) %}\n{{ [undefined_thing] }}\n{% endfor %}",
        2,
        "'undefined_thing' is undefined",
    ),
    ("x\n\n{{ 1 / 0 }}", 3, "ZeroDivisionError: division by zero"),
    ("{{ 'a' + 1 }}", 1, "TypeError"),
    ("{{ range(200000)|list }}", 1, "Range too big"),
    ("{% macro f() %}{{ f() }}{% endmacro %}\n{{ f() }}", None, "recursed too deeply"),
    ("{{ 'x'|nosuchfilter }}", 1, "No filter named 'nosuchfilter'"),
]


@pytest.mark.parametrize(("source", "line", "fragment"), CARRY_LINE_CASES)
def test_render_errors_carry_the_template_line(
    source: str, line: int | None, fragment: str
) -> None:
    with pytest.raises(TemplateError) as exc:
        render_text(source, context(**{"slaves.number": 3}), limits=FAST)
    if line is not None:
        assert exc.value.line == line
    assert fragment in exc.value.message


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("{% for x in %}", 1),
        ("ok\n{{ a + }}", 2),
        ("one\ntwo\n{% if x %}\nno end", 3),
        ("{% endfor %}", 1),
        ("{{ x", 1),
    ],
)
def test_syntax_errors(source: str, line: int) -> None:
    with pytest.raises(TemplateError) as exc:
        check_syntax(source)
    assert exc.value.line == line
    assert exc.value.message.startswith(f"line {line}: ")
    with pytest.raises(TemplateError) as rendered:
        render_text(source, {}, limits=FAST)
    assert rendered.value.line == line


def test_check_syntax_accepts_valid_templates_without_evaluating() -> None:
    check_syntax("{{ 'x' * 10**9 }}{% for i in range(10) %}{{ i }}{% endfor %}")
    check_syntax((EXAMPLES / "cdh/5.7.2/service-template.json").read_text())


SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ (lipsum|attr('__globals__'))['os'] }}",
    "{{ namespace.__init__ }}",
    "{{ range.__self__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ dict.mro() }}",
    "{{ dict.__subclasses__() }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ '{a.__class__.__mro__}'.format_map({'a': 1}) }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ opts.update({'x': 1}) }}{{ opts }}",
    "{{ [1].pop() }}",
    "{% for x in range(1) %}{{ loop.__class__ }}{% endfor %}",
    "{{ lipsum }}",
    "{{ dict }}",
    "{{ joiner }}",
    "{{ self }}",
    "{{ ''.join }}",
]


@pytest.mark.parametrize("source", SANDBOX_ESCAPES)
def test_sandbox_escapes_are_refused(source: str) -> None:
    try:
        text = render_text(source, context(), limits=FAST)
    except TemplateError as exc:
        # Naming a type ("'function' object") is fine; a repr with an address is a leak.
        for leak in ("<class", "<function", "<built-in", "<module", " at 0x"):
            assert leak not in exc.message
    else:
        pytest.fail(f"rendered {text!r}")


@pytest.mark.parametrize(
    "source",
    ["{{ ''.__class__ }}", "{{ dict.mro() }}", "{{ '{0.__class__}'.format(1) }}", "{{ lipsum }}"],
)
def test_sandbox_violations_say_not_allowed(source: str) -> None:
    with pytest.raises(TemplateError, match="not allowed") as exc:
        render_text(source, {}, limits=FAST)
    assert exc.value.line == 1


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ 'a' * 10**8 }}", "result of * would have 100000000 items; limit is 100000"),
        ("{{ 10**8 * 'a' }}", "result of * would have 100000000 items"),
        ("{{ [0] * 10**9 }}", "result of * would have 1000000000 items"),
        ("{{ (1, 2) * 60000 }}", "would have 120000 items"),
        ("{{ 10 ** 100000 }}", "limit is 10000"),
        ("{{ 10 ** 10000 }}", "result of ** would need about 33220 bits"),
        ("{{ 2.0 ** 100000 }}", "limit is 10000"),
        ("{{ (2 ** 9000) * (2 ** 9000) }}", "result of * would need about"),
    ],
)
def test_operator_bombs_are_refused(source: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as exc:
        render_text(source, {}, limits=FAST)
    assert fragment in exc.value.message
    assert exc.value.line == 1


def test_nested_loops_time_out() -> None:
    source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"took longer than 1.0 s to render"):
        render_text(source, {}, limits=FAST)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(
    "source",
    [
        # Doubling a string with ~ is allowed by the sandbox and grows past any limit.
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        "{{ 'x'.ljust(1000000000)|length }}",
        "{{ '{:>1000000000}'.format('x')|length }}",
    ],
)
def test_memory_hogs_fail_cleanly(source: str) -> None:
    with pytest.raises(TemplateError, match="more than 256 MB") as exc:
        render_text(source, {}, limits=RenderLimits(timeout=5.0, max_memory=256 * MB))
    assert exc.value.line == 1


def test_output_is_capped() -> None:
    source = "{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}"
    limits = RenderLimits(timeout=2.0, max_output=100_000)
    with pytest.raises(TemplateError, match="larger than 100000 characters"):
        render_text(source, {}, limits=limits)
    assert len(render_text(source.replace("100000", "4999"), {}, limits=limits)) == 99_980


def test_large_output_within_the_cap_round_trips() -> None:
    text = render_text('{% for i in range(50000) %}\u00e9"\\{{ i }}\n{% endfor %}', {}, limits=FAST)
    assert text.count("\n") == 50_000
    assert text.startswith('\u00e9"\\0\n\u00e9"\\1')


def test_render_does_not_change_the_context() -> None:
    ctx = context(**{"slaves.number": 3})
    before = json.dumps(ctx, sort_keys=True)
    render_text("{% set opts = {} %}{% set slaves = 1 %}{{ slaves }}", ctx, limits=FAST)
    assert json.dumps(ctx, sort_keys=True) == before


def test_many_renders_leave_no_children() -> None:
    for i in range(20):
        assert render_text("{{ n }}", {"n": i}, limits=FAST) == str(i)


@pytest.mark.parametrize(
    "kwargs", [{"timeout": 0}, {"max_output": 0}, {"max_memory": -1}, {"max_power": 0}]
)
def test_render_limits_are_checked(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RenderLimits(**kwargs)


# --------------------------------------------------------------------------- the code cache


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> codecache.CodeCache:
    """A fresh, empty cache of generated code for this test only."""
    fresh = codecache.CodeCache()
    monkeypatch.setattr(codecache, "CODE_CACHE", fresh)
    return fresh


def cached_code(source: str, limits: RenderLimits = FAST) -> str | None:
    _env, fingerprint = codecache.environment(limits)
    return codecache.CODE_CACHE.get(codecache.cache_key(fingerprint, source))


def outcome(source: str, ctx: dict, fmt: str | None = None, limits: RenderLimits = FAST) -> tuple:
    try:
        if fmt is None:
            return ("ok", render_text(source, ctx, limits=limits))
        return ("ok", render_spec(source, ctx, fmt=fmt, limits=limits))
    except TemplateError as exc:
        return ("error", exc.message, exc.line)


CACHE_CASES = [
    (EXAMPLES / "gluster/3.7.11/service-template.json", "json"),
    (EXAMPLES / "cdh/5.7.2/service-template.json", "json"),
    *[(source, None) for source, _expected in RENDER_CASES],
    *[(source, None) for source, _line, _fragment in CARRY_LINE_CASES],
    ("{% for x in %}", None),
    ("a\n{{ 'x' ~ }}", None),
    ("a: {{ opts['slaves.number'] }}\nb: [1, 2]\n", "yaml"),
    ('{"a": {{ slaves.number }}}', "json"),
    ('{"a": }', "json"),
]


@pytest.mark.parametrize(("source", "fmt"), CACHE_CASES)
def test_cached_renders_give_the_same_results(
    monkeypatch: pytest.MonkeyPatch, source: str | Path, fmt: str | None
) -> None:
    text = source.read_text() if isinstance(source, Path) else source
    ctx = context(**{"slaves.number": 3, "size": 2, "cpu": 1, "mem": 512, "disks": 1})
    if isinstance(source, Path):
        doc = validate_options_document(json.loads((source.parent / "options.json").read_text()))
        ctx = context(**merge_options(doc, {}))
    monkeypatch.setattr(codecache, "CODE_CACHE", codecache.CodeCache(max_entries=0))
    uncached = outcome(text, ctx, fmt)
    assert len(codecache.CODE_CACHE) == 0
    monkeypatch.setattr(codecache, "CODE_CACHE", codecache.CodeCache())
    first = outcome(text, ctx, fmt)
    second = outcome(text, ctx, fmt)
    third = outcome(text, ctx, fmt)
    assert uncached == first == second == third
    try:  # benign sources: compiling them here, in the test process, is fine
        generated = TemplateEnvironment().compile(text, raw=True)
    except Exception:
        generated = None  # nothing to cache for a template that does not compile
    assert cached_code(text) == generated


def test_generated_code_depends_only_on_source_and_environment(cache) -> None:
    source = (EXAMPLES / "gluster/3.7.11/service-template.json").read_text()
    doc = validate_options_document(
        json.loads((EXAMPLES / "gluster/3.7.11/options.json").read_text())
    )
    small = context(**merge_options(doc, {}))
    big = context(**merge_options(doc, {"size": 7, "disks": 3, "gluster.image": "evil'\"}}"}))
    render_spec(source, small, limits=FAST)
    code_small = cached_code(source)
    cache.clear()
    other_limits = RenderLimits(timeout=3.0, max_output=50_000, max_memory=300 * MB)
    render_spec(source, big, limits=other_limits)
    code_big = cached_code(source, other_limits)
    assert code_small is not None
    assert code_small == code_big == cached_code(source, FAST)
    # ... and it is what Jinja generates for the source alone (here, in the test process).
    assert code_small == TemplateEnvironment().compile(source, raw=True)
    assert codecache.environment(FAST)[1] == codecache.environment(other_limits)[1]


def test_the_cache_key_covers_the_environment_settings() -> None:
    base = TemplateEnvironment()
    changed = TemplateEnvironment()
    changed.trim_blocks = True
    fingerprint = codecache.codegen_fingerprint
    assert fingerprint(base) == fingerprint(TemplateEnvironment(FAST))
    assert fingerprint(base) != fingerprint(changed)
    key = codecache.cache_key
    assert key(fingerprint(base), "{{ x }}") != key(fingerprint(changed), "{{ x }}")


def test_a_different_source_never_reuses_another_code(cache) -> None:
    sources = ["{{ n }}", "{{ n }} ", " {{ n }}", "{{ n + 1 }}", "{{ n }}\u00e9", "{{ m }}"]
    expected = ["5", "5 ", " 5", "6", "5\u00e9", "7"]
    for _round in range(2):
        for source, text in zip(sources, expected, strict=True):
            assert render_text(source, {"n": 5, "m": 7}, limits=FAST) == text
    assert len(cache) == len(sources)
    assert len({cached_code(source) for source in sources}) == len(sources)


def test_the_cache_is_used_and_keyed_by_source(cache) -> None:
    """White box: code planted under one source's key is what that source renders with."""
    render_text("{{ 'planted' }}", {}, limits=FAST)
    render_text("{{ 'victim' }}", {}, limits=FAST)
    planted = cached_code("{{ 'planted' }}")
    _env, fingerprint = codecache.environment(FAST)
    cache.put(codecache.cache_key(fingerprint, "{{ 'victim' }}"), planted, len(planted))
    assert render_text("{{ 'victim' }}", {}, limits=FAST) == "planted"
    assert render_text("{{ 'victim' }} ", {}, limits=FAST) == "victim "


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    by_count = codecache.CodeCache(max_entries=3)
    monkeypatch.setattr(codecache, "CODE_CACHE", by_count)
    sources = [f"{{{{ n * {i} }}}}" for i in range(8)]
    for i, source in enumerate(sources):
        assert render_text(source, {"n": 2}, limits=FAST) == str(2 * i)
    assert len(by_count) == 3
    assert [cached_code(source) is not None for source in sources] == [False] * 5 + [True] * 3

    entry = len(cached_code(sources[-1]).encode())
    by_size = codecache.CodeCache(max_bytes=2 * entry + entry // 2)
    monkeypatch.setattr(codecache, "CODE_CACHE", by_size)
    for source in sources:
        render_text(source, {"n": 2}, limits=FAST)
    assert len(by_size) == 2
    assert by_size.size <= 2 * entry + entry // 2

    too_big = codecache.CodeCache(max_entry_bytes=entry - 1)
    monkeypatch.setattr(codecache, "CODE_CACHE", too_big)
    assert render_text(sources[3], {"n": 2}, limits=FAST) == "6"
    assert len(too_big) == 0


def test_the_cache_evicts_the_least_recently_used() -> None:
    lru = codecache.CodeCache(max_entries=2)
    lru.put(b"a", "A", 1)
    lru.put(b"b", "B", 1)
    assert lru.get(b"a") == "A"  # now b is the oldest
    lru.put(b"c", "C", 1)
    assert (lru.get(b"a"), lru.get(b"b"), lru.get(b"c")) == ("A", None, "C")
    lru.put(b"c", "CC", 2)
    assert (len(lru), lru.size) == (2, 3)
    lru.clear()
    assert (len(lru), lru.size) == (0, 0)


def test_nothing_is_compiled_in_the_parent(cache, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    env_class = TemplateEnvironment

    def child_only(name: str):
        original = getattr(env_class, name)

        def guarded(self, *args, **kwargs):
            assert os.getpid() != parent, f"{name} ran in the parent"
            return original(self, *args, **kwargs)

        return guarded

    for name in ("_parse", "_generate", "_compile", "compile", "from_string"):
        monkeypatch.setattr(env_class, name, child_only(name))
    for _ in range(3):
        assert render_text("{{ n }}", {"n": 1}, limits=FAST) == "1"
    assert len(cache) == 1


def test_constant_folding_bombs_stay_in_the_child(cache) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    limits = RenderLimits(timeout=5.0, max_memory=256 * MB)
    for _ in range(2):
        with pytest.raises(TemplateError, match="more than 256 MB"):
            render_text("{{ 'x'|center(999999999)|length }}", {}, limits=limits)
    # ru_maxrss is in KiB: the parent never held the gigabyte the fold asks for.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


GUARDS_ON_CACHED = [
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        FAST,
        r"took longer than 1.0 s to render",
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        RenderLimits(timeout=5.0, max_memory=256 * MB),
        "more than 256 MB",
    ),
    (
        "{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}",
        RenderLimits(timeout=2.0, max_output=100_000),
        "larger than 100000 characters",
    ),
    ("{{ 'a' * 10**8 }}", FAST, "result of \\* would have 100000000 items"),
    ("{{ ''.__class__ }}", FAST, "not allowed"),
    ("{{ '{0.__class__}'.format(1) }}", FAST, "not allowed"),
    ("{{ lipsum }}", FAST, "not allowed"),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", FAST, "not allowed"),
]


@pytest.mark.parametrize(("source", "limits", "message"), GUARDS_ON_CACHED)
def test_guards_fire_on_a_cached_template(
    cache, source: str, limits: RenderLimits, message: str
) -> None:
    with pytest.raises(TemplateError, match=message) as first:
        render_text(source, {}, limits=limits)
    # The code frame goes out before the render, so even a killed render leaves it cached.
    assert cached_code(source, limits) is not None
    started = time.monotonic()
    with pytest.raises(TemplateError, match=message) as second:
        render_text(source, {}, limits=limits)
    assert time.monotonic() - started < limits.timeout + 2.0
    assert (second.value.message, second.value.line) == (first.value.message, first.value.line)
    assert len(cache) == 1


def test_a_dead_zygote_is_replaced() -> None:
    """The render zygote killed (between renders or during one): the next render starts a
    new one, and its limits still hold."""
    import signal

    assert render_text("{{ n }}", {"n": 0}, limits=FAST) == "0"
    zygote = supervisor._ZYGOTES._process
    assert zygote is not None and zygote.poll() is None
    os.kill(zygote.pid, signal.SIGKILL)
    zygote.wait()
    for i in range(3):
        assert render_text("{{ n }}", {"n": i}, limits=FAST) == str(i)
    assert supervisor._ZYGOTES._process.pid != zygote.pid
    with pytest.raises(TemplateError, match="took longer"):
        render_text(GUARDS_ON_CACHED[0][0], {}, limits=RenderLimits(timeout=0.3))


def test_renders_run_in_a_clean_process() -> None:
    """The zygote holds none of this process's environment (secrets) nor its descriptors."""
    os.environ["PAAS_TEST_SECRET"] = "hunter2"
    try:
        assert render_text("{{ n }}", {"n": 1}, limits=FAST) == "1"
        zygote = supervisor._ZYGOTES._process
        environ = Path(f"/proc/{zygote.pid}/environ").read_bytes()
        assert b"hunter2" not in environ and b"PAAS_" not in environ
        for fd in os.listdir(f"/proc/{zygote.pid}/fd"):
            target = os.readlink(f"/proc/{zygote.pid}/fd/{fd}")
            # beyond stdio: its socket, the control sockets of renders, its wake-up pipe
            assert int(fd) <= 2 or target.startswith(("socket:", "pipe:", "anon_inode:"))
    finally:
        del os.environ["PAAS_TEST_SECRET"]


def test_the_result_frame_is_checked() -> None:
    split = codecache.split_frame
    frame = (5).to_bytes(4, "big") + b"hello" + b'{"ok": 1}'
    assert split(frame, 100) == (b"hello", b'{"ok": 1}')
    assert split(bytes(4) + b'{"ok": 1}', 0) == (b"", b'{"ok": 1}')
    assert split(frame, 0) is None  # code this render did not ask for
    assert split(frame, 4) is None  # more than it allowed
    assert split(frame[:7], 100) is None  # cut short
    assert split(b"", 100) is None
