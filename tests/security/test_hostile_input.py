"""Hostile input: a corpus of bodies, names, paths, options and templates an attacker (or a
careless operator) sends, and what the platform must answer.

Every case is a clear 4xx in the JSON envelope naming the problem, at upload when the platform
can tell there, at launch or dry run (``/plan``) otherwise; nothing is created (the whole
database is compared before and after). What only fails on a real worker (a template replaced
while an instance waits, options that no longer fit it) runs through one real Celery worker and
ends as a failed instance with a reason and nothing allocated; that worker then runs a normal
launch to ``running``. No answer, reason or worker log ever holds a secret.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bigdata_paas.models import Address, HostDisk, Node
from tests.api.support import (
    API,
    TINY_OPTIONS,
    TINY_ORQUESTRATOR,
    TINY_TEMPLATE,
    CheckedClient,
    add_service,
    error_of,
)
from tests.conftest import (
    ADMIN_TOKEN,
    Worker,
    bearer,
    load_example_hosts,
    make_app,
    register_example,
    wait_for_status,
)
from tests.security.conftest import CANARY
from tests.security.support import assert_secret_free, assert_unchanged, db_state

pytestmark = pytest.mark.security

ADMIN = bearer(ADMIN_TOKEN)
LIMIT = 1024 * 1024  # PAAS_MAX_BODY_BYTES's default
#: a file an escaped template would create: it must never exist
PWNED = Path(tempfile.gettempdir()) / f"paas-pwned-{uuid.uuid4().hex}"

PROBE_OPTIONS = {
    "required": {"n": 1},
    "optional": {"cpu": 1, "mode": "safe"},
    "descriptions": {"n": "nodes", "cpu": "cores a node", "mode": "the probe's branch"},
}


def dispatch(branches: dict[str, str]) -> str:
    """A template that renders TINY with the default options, and ``branches[mode]`` when
    launched with that mode: one upload (one test render) for a whole corpus."""
    arms = "".join(
        ("{% if" if i == 0 else "{% elif") + f" opts['mode'] == {mode!r} %}}" + evil
        for i, (mode, evil) in enumerate(branches.items())
    )
    return arms + "{% else %}" + TINY_TEMPLATE + "{% endif %}"


def leaking(payload: str) -> str:
    """A valid spec that would carry the payload's output, should the sandbox let it run.

    So an escape would not merely break the JSON: it would be accepted, and show.
    """
    return (
        "{% set leak %}" + payload + "{% endset %}"
        '{"nodes": {"node0": {"cpu": 1, "mem": 128, "disks": {}, "networks": {},'
        ' "tags": [{{ leak|tojson }}]}}, "services": {"probe": {"nodes": ["node0"],'
        ' "leak": {{ leak|tojson }}}}}'
    )


def nodes_template(count: str, cpu: str = "1") -> str:
    return (
        '{% set comma = joiner(",") %}{"nodes": {\n'
        "{% for i in range(" + count + ") %}{{ comma() }}"
        '"node{{ i }}": {"cpu": ' + cpu + ', "mem": 128, "disks": {}, "networks": {}}'
        '{% endfor %}}, "services": {}}'
    )


# --------------------------------------------------------------------------- the corpus

#: known Jinja2 sandbox escapes: attribute walks to os/builtins, attr and format tricks,
#: format strings, set chains, globals of the helpers, loaders, mutation of the context
SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ [].__class__.__base__ }}",
    "{{ (1).__class__.__base__.__subclasses__() }}",
    "{{ ''['__class__'] }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    f"{{{{ cycler.__init__.__globals__.os.popen('id > {PWNED}').read() }}}}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__ }}",
    "{{ namespace.__init__.__globals__['__builtins__']['open']('/etc/passwd').read() }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ (lipsum|attr('__globals__'))['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self.__dict__ }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{{ ''|attr('__class__') }}",
    r"{{ ()|attr('\x5f\x5fclass\x5f\x5f') }}",
    "{{ ()|attr('%c%cclass%c%c'|format(95, 95, 95, 95)) }}",
    "{{ '%s'|format(lipsum.__globals__) }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ '{0.__class__.__mro__}'.format(opts) }}",
    "{{ '{a.__class__.__mro__}'.format_map({'a': 1}) }}",
    "{{ '{0[os]}'.format(lipsum.__globals__) }}",
    "{% set x = ''.__class__ %}{% set y = x.__mro__ %}{{ y }}",
    "{% set g = cycler.__init__ %}{% set h = g.__globals__ %}{{ h['os'] }}",
    "{{ range.__self__ }}",
    "{{ dict.mro() }}",
    "{{ dict.__subclasses__() }}",
    "{{ opts.__class__.__init__.__globals__ }}",
    "{{ opts.update({'n': 999}) }}",
    "{{ [1].pop() }}",
    "{% for x in range(1) %}{{ loop.__class__.__init__.__globals__ }}{% endfor %}",
    "{% set ns = namespace() %}{{ ns.__class__ }}",
    "{{ __import__('os').system('id') }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os.popen('id').read() }}",
    "{% from 'os' import popen %}{{ popen('id').read() }}",
    "{{ lipsum }}",
    "{{ cycler }}",
]
#: what a refusal says (the sandbox's words, an undefined name, no loader, no output)
REFUSED = re.compile(
    r"not allowed in a template: (access to attribute '[^']+' of '[A-Za-z]+' object is unsafe"
    r"|cannot output a (function|class))"
    r"|'(request|config|__import__)' is undefined"
    r"|'function object' has no attribute '__self__'"
    r"|no loader for this environment specified"
)


@dataclass(frozen=True)
class Bad:
    """A hostile template (the evil branch) and what the refusal must say."""

    id: str
    evil: str
    says: str


LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
BAD_TEMPLATES = [
    Bad("not-json", "hello, not JSON", "rendered template is not valid JSON"),
    Bad("python-dict", "{'nodes': {}}", "rendered template is not valid JSON"),
    Bad("nan", '{"nodes": NaN}', "NaN is not allowed"),
    Bad("not-a-spec", "[1, 2, 3]", "spec"),
    Bad("no-nodes", '{"nodes": {}, "services": {}}', "node"),
    Bad(
        "huge-output",
        "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxx{% endfor %}"
        "{% endfor %}",
        "larger than 2000000 characters",
    ),
    Bad("endless-loop", LOOP, "took longer than 2.0 s to render"),
    Bad(
        "recursion",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "recursed too deeply",
    ),
    Bad("memory", "{{ 'x'.ljust(2000000000)|length }}", "MB while rendering"),
    Bad("repeat-bomb", "{{ 'x' * 10**9 }}", "result of * would have"),
    Bad("power-bomb", "{{ 10 ** 100000 }}", "exponent of ** is 100000; limit is 10000"),
    Bad(
        "deep-output",
        '{"nodes": {"n": {"cpu": 1, "mem": 1, "disks": {}, "networks": {}, "x": '
        "{% for i in range(100000) %}[{% endfor %}{% for i in range(100000) %}]{% endfor %}"
        "}}}",
        "nested too deeply",
    ),
    Bad("many-nodes", nodes_template("300"), "300 nodes"),
    Bad("gigantic-nodes", nodes_template("10**9"), "larger than MAX_RANGE (100000)"),
    Bad(
        "gigantic-nested-nodes",
        nodes_template("99999"),
        "larger than 2000000 characters",
    ),
    Bad("int-overflow", nodes_template("1", cpu="{{ 2**64 }}"), "must be at most 2147483647"),
    Bad(
        "traversal-names",
        '{"nodes": {"../../etc": {"cpu": 1, "mem": 1, "disks": {"../x": '
        '{"destination": "/data"}}, "networks": {}}}, "services": {}}',
        "invalid node name",
    ),
    Bad("lone-surrogate-key", r"{{ opts['\ud800'] }}", "has no attribute"),
    Bad(
        "lone-surrogate-value",
        '{"nodes": {"n\\ud800": {}}, "services": {}}',
        "rendered spec holds a lone surrogate '\\ud800'",
    ),
]


def assert_refusal(response, what: str, says: str | re.Pattern, secrets: list[str]) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code)
    text = response.get_data(as_text=True)
    assert_secret_free(text, secrets, what)
    message = error_of(response)["message"]
    if isinstance(says, re.Pattern):
        assert says.search(message), (what, message)
    else:
        assert says in message, (what, message)


# --------------------------------------------------------------------------- the world


@pytest.fixture(scope="module")
def world(security_app, security_client):
    client = security_client
    add_service(
        client,
        ADMIN,
        "tiny",
        "1",
        template=TINY_TEMPLATE,
        options=TINY_OPTIONS,
        orquestrator=TINY_ORQUESTRATOR,
    )
    add_service(
        client,
        ADMIN,
        "probe",
        "1",
        options=PROBE_OPTIONS,
        template=TINY_TEMPLATE,
        orquestrator=TINY_ORQUESTRATOR,
    )
    register_example(client, ADMIN, "gluster", "3.7.11")
    load_example_hosts(client, ADMIN)
    return client


@pytest.fixture
def unchanged(security_app):
    """Assert, after the test, that the database is exactly as it was before it."""
    before = db_state(security_app)
    yield
    assert_unchanged(before, db_state(security_app))
    assert not PWNED.exists()


# --------------------------------------------------------------------------- bodies

JSON_ROUTES = [
    ("POST", "/services"),
    ("POST", "/services/gluster/3.7.11"),
    ("POST", "/services/gluster/3.7.11/plan"),
    ("PUT", "/services/probe/1/options"),
    ("POST", "/hosts"),
    ("PATCH", "/hosts/node01"),
    ("POST", "/networks"),
    ("POST", "/users"),
]
NOT_JSON = [
    b"{",
    b'{"name": "x",}',
    b"{'name': 'x'}",
    b'{"name": "x"} trailing',
    b'{"a": NaN}',
    b'{"a": -Infinity}',
    b'{"name": "\xff"}',
    b'{"name": "\xc0\xae\xc0\xae"}',
    b"[" * 100_000,
    b'{"a":' * 50_000,
    b"\x00",
]
NOT_AN_OBJECT = [b"[]", b'"x"', b"1", b"null", b"true", b'["name", "x"]']


@pytest.mark.parametrize("raw", NOT_JSON, ids=lambda raw: repr(raw[:16]))
def test_malformed_json_is_400_naming_the_body(world, unchanged, secrets, raw):
    for method, path in JSON_ROUTES:
        response = world.open(
            API + path, method=method, data=raw, content_type="application/json", headers=ADMIN
        )
        assert response.status_code == 400, path
        assert error_of(response)["code"] == "invalid_input"
        assert_refusal(response, path, "body is not valid JSON", secrets)


@pytest.mark.parametrize("raw", NOT_AN_OBJECT, ids=lambda raw: raw.decode())
def test_json_that_is_not_an_object_is_400(world, unchanged, secrets, raw):
    for method, path in JSON_ROUTES:
        response = world.open(
            API + path, method=method, data=raw, content_type="application/json", headers=ADMIN
        )
        assert response.status_code == 400, path
        assert error_of(response)["code"] == "invalid_input"
        assert_refusal(response, path, re.compile("object|must be"), secrets)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/html",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "application/jsonx",
        "image/png",
    ],
)
def test_a_wrong_content_type_is_415_naming_it(world, unchanged, content_type):
    body = json.dumps({"name": "ct", "version": "1", "cidr": "10.9.0.0/24", "n": 1})
    for method, path in JSON_ROUTES:
        if path.endswith("/options") and content_type == "application/x-www-form-urlencoded":
            continue  # how the original system's scripts sent options: read as JSON
        response = world.open(
            API + path, method=method, data=body, content_type=content_type, headers=ADMIN
        )
        assert response.status_code == 415, path
        assert error_of(response)["code"] == "unsupported_media_type"
        assert content_type.split(";")[0] in error_of(response)["message"]


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "image/png"],
)
@pytest.mark.parametrize("part", ["template", "orquestrator"])
def test_raw_parts_are_taken_raw_whatever_the_content_type(world, part, content_type):
    """Form and multipart types must not make Flask eat the body of a raw PUT."""
    add_service(world, ADMIN, name := f"raw{uuid.uuid4().hex[:8]}", "1")
    raw = {"template": TINY_TEMPLATE, "orquestrator": TINY_ORQUESTRATOR}[part].encode()
    path = f"{API}/services/{name}/1/{part}"
    response = world.put(path, data=raw, content_type=content_type, headers=ADMIN)
    assert response.status_code == 200, response.get_json()
    assert world.get(path, headers=ADMIN).get_data() == raw


HUGE_ROUTES = [
    *JSON_ROUTES,
    ("PUT", "/services/probe/1/template"),
    ("PUT", "/services/probe/1/orquestrator"),
    ("POST", "/services/probe/1"),
]


@pytest.mark.parametrize(("method", "path"), HUGE_ROUTES)
def test_a_huge_body_is_413(world, unchanged, method, path):
    body = '{"name": "' + "x" * LIMIT + '"}'
    response = world.open(
        API + path, method=method, data=body, content_type="application/json", headers=ADMIN
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert str(LIMIT) in error_of(response)["message"]


def test_a_flood_of_unknown_options_gets_a_bounded_answer(world, unchanged):
    body = {f"opt{i}": i for i in range(40_000)}
    for path in ("/services/gluster/3.7.11", "/services/gluster/3.7.11/plan"):
        response = world.post(API + path, json=body, headers=ADMIN)
        assert response.status_code == 400
        assert len(response.get_data()) < 64 * 1024
        problems = error_of(response)["details"]["problems"]
        assert len(problems) <= 201  # 200, then how many more


# --------------------------------------------------------------------------- names and paths

TRAVERSAL = [
    "..",
    "../etc",
    "a/../b",
    "a/b",
    "..\\x",
    "%2e%2e%2f",
    "%252e%252e",
    "..%5c",
    ".hidden",
    "-rf",
]
CONTROL = ["a\x00b", "a\nb", "a\rb", "a\tb", "a\x1bb", "a\x7fb", "a\u2028b", "a\u200bb"]
LOOKALIKE = [
    "\uff47\uff4c\uff55\uff53\uff54\uff45\uff52",  # fullwidth "gluster"
    "glust\u0435r",  # Cyrillic e
    "\u0430dmin",  # Cyrillic a
    "gluster\u202e",  # right-to-left override
    "gluste\u0280",
    "\uff4e\uff4f\uff44\uff45" + "01",  # fullwidth "node"
]
BAD_NAMES = TRAVERSAL + CONTROL + LOOKALIKE


def name_bodies(bad: str) -> list[tuple[str, str, dict, str]]:
    """(method, path, body, field) that carry ``bad`` as a name."""
    return [
        ("POST", "/services", {"name": bad, "version": "1"}, "name"),
        ("POST", "/services", {"name": "ok", "version": bad}, "version"),
        ("POST", "/services", {"name": "ok", "version": "1/" + bad}, "version"),
        ("POST", "/hosts", {"name": bad, "address": "127.0.0.1", "cpu": 1, "mem": 1}, "name"),
        (
            "POST",
            "/hosts",
            {"name": "h", "address": "127.0.0.1", "cpu": 1, "mem": 1, "disks": [{"name": bad}]},
            "disks[0].name",
        ),
        ("POST", "/networks", {"name": bad, "cidr": "10.8.0.0/24"}, "name"),
        ("POST", "/users", {"name": bad}, "name"),
        ("POST", "/users", {"name": "eve", "role": bad}, "role"),
    ]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=ascii)
def test_hostile_names_in_bodies_are_400_naming_the_field(world, unchanged, secrets, bad):
    for method, path, body, field in name_bodies(bad):
        response = world.open(API + path, method=method, json=body, headers=ADMIN)
        assert response.status_code == 400, (path, body)
        fields = {p["field"] for p in error_of(response)["details"]["problems"]}
        assert field in fields, (path, body, fields)
        assert_secret_free(response.get_data(as_text=True), secrets, path)


PATH_CASES = [
    *[f"/services/{b}/3.7.11" for b in ("..", "%2e%2e", "%252e%252e", "..%5c", "gluster%00")],
    *[f"/services/gluster/{b}" for b in ("..", "3.7.11%00", "..%2f..%2fusers", "%2e%2e%2f")],
    "/services/../users",
    "/services/gluster/../../users",
    "/services/%2e%2e/%2e%2e/users",
    "/services/\uff47\uff4c\uff55\uff53\uff54\uff45\uff52/3.7.11",
    "/services/glust\u0435r/3.7.11",
    "/services/gluster/\uff13.7.11",
    "/services/GLUSTER/3.7.11",
    "/services/gluster%20/3.7.11",
    "/hosts/..",
    "/hosts/node01%00",
    "/hosts/nod\u0435" + "01",
    "/hosts/NODE01",
    "/networks/..%5c..%5c",
    "/instances/..",
    "/instances/%2e%2e%2f%2e%2e%2fusers",
    "/instances/%00",
]


@pytest.mark.parametrize("path", PATH_CASES, ids=ascii)
def test_hostile_paths_find_nothing_and_change_nothing(world, unchanged, secrets, path):
    """Traversal, encoded traversal, NUL and look-alikes never reach a real resource."""
    for method in ("GET", "PUT", "POST", "PATCH", "DELETE"):
        response = world.open(
            API + path,
            method=method,
            data=json.dumps({"state": "drain"}),
            content_type="application/json",
            headers=ADMIN,
        )
        assert response.status_code in (400, 404, 405), (method, path, response.status_code)
        if "%00" in path and response.status_code != 405:
            assert response.status_code == 400
            assert "NUL" in error_of(response)["message"]
        assert_secret_free(response.get_data(as_text=True), secrets, path)


@pytest.mark.parametrize(
    "query",
    [
        "service=%00",
        "user=admin%00",
        "status=pending%00",
        "version=..%2f..",
        "page=%EF%BC%91",
        "per_page=1e3",
        "page=99999999999999999999999",
        "service=%ED%A0%80",
        "service=%ff",
    ],
)
def test_hostile_query_strings_are_a_clear_answer(world, unchanged, query):
    response = world.get(f"{API}/instances?{query}", headers=ADMIN)
    # every one is refused, naming the parameter: none reaches the database
    assert response.status_code == 400, (query, response.status_code)
    field = query.split("=", 1)[0]
    assert [p["field"] for p in error_of(response)["details"]["problems"]] == [field]
    if "%00" in query:
        assert "NUL" in error_of(response)["message"]


HOST = {"name": "hx", "address": "127.0.0.1", "cpu": 1, "mem": 1}
#: (method, path, body, field): text no database column can store (PostgreSQL refuses NUL,
#: UTF-8 has no lone surrogates), each a 400 naming where it is
UNSTORABLE = [
    ("POST", "/services", {"name": "d", "version": "1", "description": "a\x00b"}, "description"),
    ("POST", "/services", {"name": "d", "version": "1", "description": "a\ud800"}, "description"),
    ("POST", "/services", {"name": "d", "version": "1", "a\x00": 1}, "body"),
    ("POST", "/services", {"name": "d", "version": "1", "\udfff": 1}, "body"),
    ("POST", "/hosts", {**HOST, "labels": {"rack": "r\x00"}}, "labels.rack"),
    ("POST", "/hosts", {**HOST, "labels": {"rack": "\udc80"}}, "labels.rack"),
    ("PATCH", "/hosts/node01", {"labels": {"k\x00": "v"}}, "labels"),
    ("POST", "/services/tiny/1", {"n": 1, "x": ["a\x00"]}, "x[0]"),
    ("POST", "/services/probe/1/plan", {"mode": "\ud800"}, "mode"),
    (
        "PUT",
        "/services/probe/1/options",
        {**PROBE_OPTIONS, "descriptions": {"n": "\x00"}},
        "descriptions.n",
    ),
    ("POST", "/users", {"name": "eve\x00"}, "name"),
    ("POST", "/networks", {"name": "n\ud800", "cidr": "10.7.0.0/24"}, "name"),
]
#: NUL in a path parameter or the query string
NUL_URLS = [
    ("GET", "/services/tiny%00/1"),
    ("DELETE", "/services/tiny/1%00"),
    ("POST", "/services/tiny%00x/1"),
    ("GET", "/hosts/node01%00"),
    ("DELETE", "/networks/demo%00"),
    ("GET", "/instances/%00"),
    ("GET", "/instances?service=%00"),
    ("GET", "/instances?user=admin%00"),
    ("GET", "/instances/x/logs?after=1%00"),
]


def check_unstorable(client) -> None:
    for method, path, body, field in UNSTORABLE:
        response = client.open(
            API + path, method=method, data=json.dumps(body), content_type="application/json",
            headers=ADMIN,
        )  # fmt: skip
        assert response.status_code == 400, (path, body, response.get_json())
        error = error_of(response)
        assert re.search("NUL|lone surrogate", error["message"]), error
        assert [p["field"] for p in error["details"]["problems"]] == [field], error
    for method, path in NUL_URLS:
        response = client.open(API + path, method=method, json={}, headers=ADMIN)
        assert response.status_code == 400, (path, response.get_json())
        assert "must not contain NUL characters" in error_of(response)["message"]


def test_nul_and_lone_surrogates_are_400_naming_where(world, unchanged):
    """Refused at the door, not a 500 from the database later."""
    check_unstorable(world)


@pytest.mark.services
def test_nul_and_lone_surrogates_are_400_on_postgresql(services_env):
    """PostgreSQL refuses NUL in text columns: without the check, each of these was a 500."""
    app = make_app(services_env)
    app.test_client_class = CheckedClient
    try:
        client = app.test_client()
        add_service(client, ADMIN, "tiny", "1", options=TINY_OPTIONS, template=TINY_TEMPLATE)
        add_service(client, ADMIN, "probe", "1", options=PROBE_OPTIONS, template=TINY_TEMPLATE)
        for extra in ("tiny", "probe"):
            client.put(
                f"{API}/services/{extra}/1/orquestrator", data=TINY_ORQUESTRATOR, headers=ADMIN
            )
        load_example_hosts(client, ADMIN)
        before = db_state(app)
        check_unstorable(client)
        assert_unchanged(before, db_state(app), "postgresql")
    finally:
        app.extensions["paas"].db.dispose()


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"sizee": 2}, {"sizee"}),
        ({"size ": 2}, {"size "}),
        ({"\u0455ize": 2}, {"\u0455ize"}),  # Cyrillic s
        ({"\uff53\uff49\uff5a\uff45": 2}, {"\uff53\uff49\uff5a\uff45"}),  # fullwidth
        ({"size\u200b": 2}, {"size\u200b"}),
        ({"__class__": 1}, {"__class__"}),
        ({"opts": {"size": 64}}, {"opts"}),
        ({"../size": 2}, {"../size"}),
        ({"": 1}, {""}),
        ({"x" * 10_000: 1}, None),
        ({"size": "2"}, {"size"}),
        ({"size": 2.5}, {"size"}),
        ({"size": True}, {"size"}),
        ({"size": None}, {"size"}),
        ({"size": [2]}, {"size"}),
        ({"size": {"$gt": 0}}, {"size"}),
        ({"size": "{{ 7 * 7 }}"}, {"size"}),
        ({"disk.type": "{{ lipsum.__globals__ }}"}, {"disk.type"}),
        ({"gluster.image": "x" * 10_001}, {"gluster.image"}),
        ({"size": 10**9}, {"size"}),
        ({"size": 10**100}, {"size"}),
        ({"size": -(2**63)}, {"size"}),
        ({"size": 0}, {"size"}),
    ],
    ids=ascii,
)
def test_unknown_and_mistyped_options_are_400(world, unchanged, secrets, body, fields):
    for route in ("", "/plan"):
        response = world.post(f"{API}/services/gluster/3.7.11{route}", json=body, headers=ADMIN)
        assert response.status_code == 400
        assert error_of(response)["code"] == "invalid_input"
        listed = {p["field"] for p in error_of(response)["details"]["problems"]}
        if fields is None:  # a 10 KB key is named, shortened
            assert all(len(field) < 200 for field in listed)
        else:
            assert listed == fields
        if "{{" in json.dumps(body):
            assert "49" not in error_of(response)["message"]  # the value was never rendered
        assert_secret_free(response.get_data(as_text=True), secrets)


@pytest.mark.parametrize(
    ("n", "status", "says"),
    [
        (201, 400, "201 nodes; the maximum per instance is 200"),
        (99_999, 422, "larger than 2000000 characters"),
        (10**9, 422, "larger than MAX_RANGE (100000)"),
        (10**100, 422, "Python int too large"),
        (2**63, 422, "Python int too large"),
        (0, 422, "node"),
        (-5, 422, "node"),
    ],
)
def test_gigantic_node_counts_are_a_clear_4xx(world, unchanged, secrets, n, status, says):
    for route in ("", "/plan"):
        response = world.post(f"{API}/services/tiny/1{route}", json={"n": n}, headers=ADMIN)
        assert response.status_code == status
        assert_refusal(response, str(n), says, secrets)


# --------------------------------------------------------------------------- templates

UPLOAD_ONLY = [
    Bad("syntax", "{% for %}", "line 1"),
    Bad("unclosed", "{% if true %}{", "end of template"),
    Bad("deep-parens", "{{ " + "(" * 20_000 + "1" + ")" * 20_000 + " }}", "nested too deeply"),
    Bad("deep-blocks", "{% if true %}" * 2000 + "{}" + "{% endif %}" * 2000, "template"),
    Bad("nul", "{}\x00", "NUL"),
]


def put_template(client, name: str, source: str | bytes, content_type: str = "text/plain"):
    return client.put(
        f"{API}/services/{name}/1/template", data=source, content_type=content_type, headers=ADMIN
    )


@pytest.mark.parametrize("bad", BAD_TEMPLATES + UPLOAD_ONLY, ids=lambda bad: bad.id)
def test_hostile_templates_are_refused_at_upload(world, unchanged, secrets, bad):
    response = put_template(world, "probe", bad.evil)
    assert_refusal(response, bad.id, bad.says, secrets)


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("!!python/object/apply:os.system ['id']", "could not determine a constructor"),
        ("a: !!python/name:os.system", "could not determine a constructor"),
        (
            "a: &a ['x','x','x','x','x','x','x','x','x']\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
                f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
                for i in range(8)
            ),
            "expands to more than",
        ),
        ("a: &a [*a]", "recursive alias"),
    ],
    ids=["python-apply", "python-name", "billion-laughs", "recursive-alias"],
)
def test_hostile_yaml_templates_are_refused_at_upload(world, unchanged, secrets, source, says):
    response = put_template(world, "probe", source, "application/yaml")
    assert_refusal(response, source[:20], says, secrets)


@pytest.mark.parametrize("payload", SANDBOX_ESCAPES)
def test_sandbox_escapes_are_refused_at_upload(world, unchanged, secrets, payload):
    response = put_template(world, "probe", leaking(payload))
    assert response.status_code == 422
    assert error_of(response)["code"] == "template_error"
    assert_refusal(response, payload, REFUSED, secrets)


LAUNCH_TIME = [Bad(f"escape-{i}", leaking(p), "") for i, p in enumerate(SANDBOX_ESCAPES)] + [
    bad
    for bad in BAD_TEMPLATES
    if bad.id in {"not-json", "huge-output", "endless-loop", "recursion", "deep-output"}
    or bad.id.startswith(("many", "gigantic", "lone"))
]


@pytest.fixture(scope="module")
def hidden(world):
    """A service whose template passes its test render but hides the corpus behind ``mode``."""
    add_service(world, ADMIN, "hidden", "1", options=PROBE_OPTIONS, orquestrator=TINY_ORQUESTRATOR)
    response = put_template(world, "hidden", dispatch({bad.id: bad.evil for bad in LAUNCH_TIME}))
    assert response.status_code == 200, response.get_json()
    return "hidden"


@pytest.mark.parametrize("bad", LAUNCH_TIME, ids=lambda bad: bad.id)
def test_hostile_templates_hidden_behind_an_option_are_refused_at_launch(
    world, hidden, unchanged, secrets, bad
):
    """The test render at upload took the harmless branch; launch and plan take the other."""
    for route in ("", "/plan"):
        response = world.post(
            f"{API}/services/{hidden}/1{route}", json={"mode": bad.id}, headers=ADMIN
        )
        assert_refusal(response, bad.id, bad.says or REFUSED, secrets)


# --------------------------------------------------------------------------- on a real worker


@dataclass(frozen=True)
class OnWorker:
    """A launch the API accepted that must fail on the worker: the operator replaced the
    template (``evil`` becomes its branch for this case) or the options document while the
    instance waited."""

    id: str
    says: str | re.Pattern
    evil: str | None = None
    options: dict | None = None
    launch: tuple = ()
    step: str = "prepare"


WORKER_CASES = [
    *[OnWorker(f"escape-{i}", REFUSED, evil=leaking(p)) for i, p in enumerate(SANDBOX_ESCAPES)],
    *[
        OnWorker(bad.id, bad.says, evil=bad.evil)
        for bad in BAD_TEMPLATES
        if bad.id != "memory"  # as in the web process: a worker forks its renders alike
    ],
    OnWorker(
        "gigantic-cpu",
        "cannot fit the inventory even when it is empty",
        evil=nodes_template("2", cpu="2147483647"),
        step="submit",
    ),
    OnWorker(
        "unknown-option",
        "mode: unknown option",
        options={"required": {"n": 1}, "optional": {"cpu": 1}},
        launch=(("mode", "evil"),),
    ),
    OnWorker(
        "mistyped-option",
        "mode: must be an integer",
        options={"required": {"n": 1}, "optional": {"cpu": 1, "mode": 0}},
        launch=(("mode", "evil"),),
    ),
    OnWorker(
        "out-of-range-option",
        "n: must be <= 2",
        options={**PROBE_OPTIONS, "limits": {"n": {"max": 2}}},
        launch=(("n", 3),),
    ),
]


@pytest.fixture(scope="module")
def worker_run(world, security_app, security_env, security_root):
    """Launch every case with no worker running, swap in the hostile part, then let one real
    worker take them all; finish with a normal launch on the same worker."""
    instances = {}
    templated = [case for case in WORKER_CASES if case.evil is not None]
    add_service(
        world,
        ADMIN,
        "late",
        "1",
        options=PROBE_OPTIONS,
        template=TINY_TEMPLATE,
        orquestrator=TINY_ORQUESTRATOR,
    )
    for case in templated:
        response = world.post(f"{API}/services/late/1", json={"mode": case.id}, headers=ADMIN)
        assert response.status_code == 202, response.get_json()
        instances[case.id] = response.get_json()["id"]
    response = put_template(world, "late", dispatch({case.id: case.evil for case in templated}))
    assert response.status_code == 200, response.get_json()
    for case in WORKER_CASES:
        if case.options is None:
            continue
        name = f"late-{case.id}"
        add_service(
            world,
            ADMIN,
            name,
            "1",
            options=PROBE_OPTIONS,
            template=TINY_TEMPLATE,
            orquestrator=TINY_ORQUESTRATOR,
        )
        response = world.post(f"{API}/services/{name}/1", json=dict(case.launch), headers=ADMIN)
        assert response.status_code == 202, response.get_json()
        instances[case.id] = response.get_json()["id"]
        response = world.put(f"{API}/services/{name}/1/options", json=case.options, headers=ADMIN)
        assert response.status_code == 200, (case.id, response.get_json())

    worker = Worker(security_env, security_root / "worker.log").start()
    try:
        results = {
            case.id: wait_for_status(
                world, ADMIN, instances[case.id], {"failed", "running"}, timeout=120
            )
            for case in WORKER_CASES
        }
        normal = world.post(f"{API}/services/tiny/1", json={"n": 1}, headers=ADMIN)
        assert normal.status_code == 202
        final = wait_for_status(world, ADMIN, normal.get_json()["id"], {"running", "failed"})
        alive = worker.process.poll() is None
        log = worker.output()
    finally:
        worker.stop()
    return {"results": results, "final": final, "alive": alive, "log": log}


@pytest.mark.parametrize("case", WORKER_CASES, ids=lambda case: case.id)
def test_what_only_a_worker_sees_fails_with_a_reason(
    world, security_app, worker_run, secrets, case
):
    body = worker_run["results"][case.id]
    assert body["status"] == "failed", body
    assert body["error"]["step"] == case.step, body
    reason = body["error"]["reason"]
    assert "internal error" not in reason, reason
    if isinstance(case.says, re.Pattern):
        assert case.says.search(reason), reason
    else:
        assert case.says in reason, reason
    events = world.get(f"{API}/instances/{body['id']}/events", headers=ADMIN)
    for text in (json.dumps(body), events.get_data(as_text=True)):
        assert_secret_free(text, secrets, case.id)
    # nothing half-created: no node of it holds a host, a disk or an address
    with security_app.extensions["paas"].db.session() as session:
        nodes = list(session.scalars(select(Node).where(Node.instance_id == body["id"])))
        ids = [node.id for node in nodes]
        assert all(node.host_id is None and node.placement is None for node in nodes)
        assert not session.scalars(select(HostDisk).where(HostDisk.node_id.in_(ids))).first()
        assert not session.scalars(select(Address).where(Address.node_id.in_(ids))).first()
    assert not PWNED.exists()


def test_the_worker_is_unharmed_and_runs_a_normal_launch(worker_run):
    assert worker_run["final"]["status"] == "running", worker_run["final"].get("error")
    assert worker_run["alive"]
    log = worker_run["log"]
    assert "crashed" not in log  # no step died of an unexpected exception
    # (not the data dir: the worker's banner names it; not "uid=": Celery warns about root)
    assert_secret_free(log, [ADMIN_TOKEN, CANARY, "root:x:0:0"], "the worker log")
    assert not PWNED.exists()
