"""Authorization matrix: every route of the URL map x {anonymous, user A, user B, admin}.

The table ``EXPECTED`` says, for every (method, rule) of the app, what each caller gets; a
route in the URL map with no row fails ``test_every_route_has_a_row``, so a new route cannot
ship without a decision. Routes of one instance run twice: on an instance of user A and on one
of the admin. Someone else's instance is a 404, never a 403 (DESIGN.md section 10,
``operations.instances.get_instance``): user B cannot even learn that A's instance exists.

Every call is made on a real resource (a fresh one for calls that change something), so a
missing check would show as a 2xx. A refused call must change nothing in the database; an
allowed one may change only its target's rows; a read changes nothing at all.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

import config
from bigdata_paas import create_app
from bigdata_paas.models import Host, Instance, LogLine, Network
from bigdata_paas.operations.lifecycle import STEP_RUNNERS
from bigdata_paas.operations.users import create_user
from bigdata_paas.states import LAUNCH_STEPS
from tests.api.support import (
    API,
    TINY_OPTIONS,
    TINY_ORQUESTRATOR,
    TINY_TEMPLATE,
    add_service,
    add_tiny,
    error_of,
    launch,
)
from tests.conftest import ADMIN_TOKEN, base_env, bearer, load_example_hosts
from tests.security.support import assert_unchanged, changed_rows, db_state

pytestmark = pytest.mark.security

CALLERS = ("anonymous", "user_a", "user_b", "admin")
#: a line in user A's instance logs that no one but A and the admin may ever read
PRIVATE = "private-to-alice-" + uuid.uuid4().hex[:8]

OK, ACCEPTED, CREATED, GONE = 200, 202, 201, 204


def row(anonymous, user_a, user_b, admin) -> dict[str, int]:
    return dict(zip(CALLERS, (anonymous, user_a, user_b, admin), strict=True))


#: (method, rule under the API prefix) -> target -> caller -> status. ``-``: the route names
#: no instance; ``a`` / ``admin``: the instance of user A / of the admin.
EXPECTED: dict[tuple[str, str], dict[str, dict[str, int]]] = {
    # anyone
    ("GET", "/health"): {"-": row(200, 200, 200, 200)},
    ("GET", "/livez"): {"-": row(200, 200, 200, 200)},
    ("GET", "/readyz"): {"-": row(200, 200, 200, 200)},
    # any user: the catalog, its documents, the docs, launch and plan
    ("GET", "/docs"): {"-": row(401, OK, OK, OK)},
    ("GET", "/openapi.json"): {"-": row(401, OK, OK, OK)},
    ("GET", "/docs/assets/<path:filename>"): {"-": row(401, OK, OK, OK)},
    ("GET", "/services"): {"-": row(401, OK, OK, OK)},
    ("GET", "/services/<name>"): {"-": row(401, OK, OK, OK)},
    ("GET", "/services/<name>/<version>"): {"-": row(401, OK, OK, OK)},
    ("GET", "/services/<name>/<version>/template"): {"-": row(401, OK, OK, OK)},
    ("GET", "/services/<name>/<version>/options"): {"-": row(401, OK, OK, OK)},
    ("GET", "/services/<name>/<version>/options/schema"): {"-": row(401, OK, OK, OK)},
    ("GET", "/events/stream"): {"-": row(401, OK, OK, OK)},
    ("POST", "/services/<name>/<version>"): {"-": row(401, ACCEPTED, ACCEPTED, ACCEPTED)},
    ("POST", "/services/<name>/<version>/plan"): {"-": row(401, OK, OK, OK)},
    ("GET", "/instances"): {"-": row(401, OK, OK, OK)},
    # any user: their own account and token
    ("GET", "/users/me"): {"-": row(401, OK, OK, OK)},
    ("POST", "/users/me/token"): {"-": row(401, CREATED, CREATED, CREATED)},
    # the owner and the admin; anyone else gets 404 (not 403)
    ("GET", "/instances/<instance_id>"): {
        "a": row(401, OK, 404, OK),
        "admin": row(401, 404, 404, OK),
    },
    ("GET", "/instances/<instance_id>/events"): {
        "a": row(401, OK, 404, OK),
        "admin": row(401, 404, 404, OK),
    },
    ("GET", "/instances/<instance_id>/logs"): {
        "a": row(401, OK, 404, OK),
        "admin": row(401, 404, 404, OK),
    },
    ("GET", "/instances/<instance_id>/events/stream"): {
        "a": row(401, OK, 404, OK),
        "admin": row(401, 404, 404, OK),
    },
    ("GET", "/instances/<instance_id>/logs/stream"): {
        "a": row(401, OK, 404, OK),
        "admin": row(401, 404, 404, OK),
    },
    ("DELETE", "/instances/<instance_id>"): {
        "a": row(401, ACCEPTED, 404, ACCEPTED),
        "admin": row(401, 404, 404, ACCEPTED),
    },
    ("PATCH", "/instances/<instance_id>"): {
        "a": row(401, OK, 404, OK),
        "admin": row(401, 404, 404, OK),
    },
    ("POST", "/instances/<instance_id>/retry"): {
        "a": row(401, ACCEPTED, 404, ACCEPTED),
        "admin": row(401, 404, 404, ACCEPTED),
    },
    # admins only: the catalog's writes, the orquestrators, the inventory, the users
    ("POST", "/services"): {"-": row(401, 403, 403, CREATED)},
    ("DELETE", "/services/<name>/<version>"): {"-": row(401, 403, 403, GONE)},
    ("PUT", "/services/<name>/<version>/template"): {"-": row(401, 403, 403, OK)},
    ("PUT", "/services/<name>/<version>/options"): {"-": row(401, 403, 403, OK)},
    ("GET", "/services/<name>/<version>/orquestrator"): {"-": row(401, 403, 403, OK)},
    ("GET", "/services/<name>/<version>/orchestrator"): {"-": row(401, 403, 403, OK)},
    ("PUT", "/services/<name>/<version>/orquestrator"): {"-": row(401, 403, 403, OK)},
    ("PUT", "/services/<name>/<version>/orchestrator"): {"-": row(401, 403, 403, OK)},
    ("GET", "/hosts"): {"-": row(401, 403, 403, OK)},
    ("POST", "/hosts"): {"-": row(401, 403, 403, CREATED)},
    ("GET", "/hosts/<name>"): {"-": row(401, 403, 403, OK)},
    ("PATCH", "/hosts/<name>"): {"-": row(401, 403, 403, OK)},
    ("DELETE", "/hosts/<name>"): {"-": row(401, 403, 403, GONE)},
    ("GET", "/networks"): {"-": row(401, 403, 403, OK)},
    ("POST", "/networks"): {"-": row(401, 403, 403, CREATED)},
    ("GET", "/networks/<name>"): {"-": row(401, 403, 403, OK)},
    ("DELETE", "/networks/<name>"): {"-": row(401, 403, 403, GONE)},
    ("GET", "/users"): {"-": row(401, 403, 403, OK)},
    ("GET", "/metrics"): {"-": row(401, 403, 403, OK)},
    ("POST", "/users"): {"-": row(401, 403, 403, CREATED)},
    ("GET", "/users/<name>"): {"-": row(401, 403, 403, OK)},
    ("PATCH", "/users/<name>"): {"-": row(401, 403, 403, OK)},
    ("POST", "/users/<name>/token"): {"-": row(401, 403, 403, CREATED)},
    ("DELETE", "/users/<name>/token"): {"-": row(401, 403, 403, GONE)},
    ("PUT", "/users/<name>/quota"): {"-": row(401, 403, 403, OK)},
    ("GET", "/quotas/default"): {"-": row(401, 403, 403, OK)},
    ("PUT", "/quotas/default"): {"-": row(401, 403, 403, OK)},
    ("GET", "/audit"): {"-": row(401, 403, 403, OK)},
}


def url_map_routes() -> set[tuple[str, str]]:
    """(method, rule under the prefix) of every route of a freshly built app."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(config.TestConfig.from_env(base_env(Path(tmp) / "var")))
        routes = {
            (method, rule.rule.removeprefix(API))
            for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}
            # the web console signs its users in with a session (tests/console)
            if not rule.endpoint.startswith("console.")
        }
        app.extensions["paas"].db.dispose()
    return routes


ROUTES = url_map_routes()
CASES = [
    (method, rule, target, caller)
    for (method, rule), targets in sorted(EXPECTED.items())
    for target in targets
    for caller in CALLERS
]


def test_every_route_has_a_row():
    assert ROUTES - set(EXPECTED) == set(), "routes without an expected outcome"
    assert set(EXPECTED) - ROUTES == set(), "rows of routes that no longer exist"
    instance_routes = {key for key in EXPECTED if "<instance_id>" in key[1]}
    for key, targets in EXPECTED.items():
        assert set(targets) == ({"a", "admin"} if key in instance_routes else {"-"}), key
        for outcomes in targets.values():
            assert set(outcomes) == set(CALLERS), key
            # anonymous is refused everywhere but the health check and the probes; users
            # never reach admin routes; user B never reaches user A's instance
            public = key[1] in ("/health", "/livez", "/readyz")
            assert outcomes["anonymous"] == (200 if public else 401), key
    assert len(CASES) == 4 * (len(EXPECTED) + len(instance_routes))


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    app: object
    client: object
    headers: dict[str, dict[str, str]]
    names: dict[str, str]
    instance: dict[str, str]  # target -> the shared instance id
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}x{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def world(security_app, security_client, new_user) -> World:
    admin = bearer(ADMIN_TOKEN)
    alice, alice_headers = new_user("alice")
    bob, bob_headers = new_user("bob")
    client = security_client
    add_tiny(client, admin)
    load_example_hosts(client, admin)
    lan = {"name": "lan", "cidr": "10.1.0.0/24"}
    assert client.post(f"{API}/networks", json=lan, headers=admin).status_code == 201
    world = World(
        app=security_app,
        client=client,
        headers={"anonymous": {}, "user_a": alice_headers, "user_b": bob_headers, "admin": admin},
        names={"user_a": alice, "user_b": bob, "admin": "admin"},
        instance={
            "a": launch(client, alice_headers, "tiny", "1", {"n": 1})["id"],
            "admin": launch(client, admin, "tiny", "1", {"n": 1})["id"],
        },
    )
    with security_app.extensions["paas"].db.session() as session:
        session.execute(
            insert(LogLine).values(
                instance_id=world.instance["a"], command="start", stream="stdout", line=PRIVATE
            )
        )
        session.commit()
    return world


def owner_of(target: str) -> str:
    return {"a": "user_a", "admin": "admin"}[target]


@dataclass
class Call:
    """One request of the matrix and the rows an allowed call may change."""

    path: str
    kwargs: dict
    #: table -> (column, value): the rows of the target (empty: nothing may change)
    target: dict[str, tuple[str, object]] = field(default_factory=dict)


def fresh_instance(world: World, target: str, *, failed: bool = False) -> str:
    owner = world.headers[owner_of(target)]
    instance_id = launch(world.client, owner, "tiny", "1", {"n": 1})["id"]
    if failed:
        with world.app.extensions["paas"].db.session() as session:
            session.execute(
                update(Instance)
                .where(Instance.id == instance_id)
                .values(status="failed", failed_step="prepare", error="boom")
            )
            session.commit()
    return instance_id


def running_instance(world: World, target: str) -> str:
    """A fresh instance brought to running by the real steps, called in-process."""
    instance_id = fresh_instance(world, target)
    rt = world.app.extensions["paas"]
    for step in LAUNCH_STEPS:
        STEP_RUNNERS[step](rt, instance_id)
    with rt.db.session() as session:
        assert session.get(Instance, instance_id).status == "running"
    return instance_id


def host_body(name: str) -> dict:
    disks = [{"name": "sdb", "type": "hdd", "size": 10}]
    return {"name": name, "address": "127.0.0.1", "cpu": 1, "mem": 128, "disks": disks}


def row_id(world: World, model, name: str) -> int:
    with world.app.extensions["paas"].db.session() as session:
        return session.scalar(select(model.id).where(model.name == name))


def account_call(world: World, method: str, rule: str, caller: str) -> Call:
    """A call on users, tokens, quotas or the audit trail; a write on a fresh user."""
    if method == "GET":
        return Call(rule.replace("<name>", world.names["user_a"]), {})
    if rule == "/users":
        name = world.unique("u")
        return Call(rule, {"json": {"name": name, "role": "user"}}, {"users": ("name", name)})
    if rule == "/users/me/token":
        return Call(rule, {"json": {}}, {"users": ("name", world.names.get(caller))})
    if rule == "/quotas/default":  # null: unlimited, as it was; no other case is limited
        return Call(rule, {"json": {"instances": None}}, {"settings": ("key", "default_quota")})
    name = world.unique("u")
    create_user(world.app.extensions["paas"], name, actor="admin")
    body = {"PATCH": {"disabled": True}, "PUT": {"cpu": 4}, "POST": {}}.get(method)
    return Call(
        rule.replace("<name>", name),
        {"json": body} if body is not None else {},
        {"users": ("name", name)},
    )


def build_call(world: World, method: str, rule: str, target: str, caller: str = "admin") -> Call:
    """The request of a case, on an existing resource (a fresh one when it may change)."""
    admin = world.headers["admin"]
    client = world.client
    reads = method == "GET"
    if rule.startswith("/docs/assets/"):
        return Call(rule.replace("<path:filename>", "swagger-ui-bundle.js"), {})
    if "<instance_id>" in rule and method == "PATCH":
        # a resize's dry run, on a running instance: what it would do, changing nothing
        instance_id = running_instance(world, target)
        body = {"json": {"options": {"n": 2}}}
        return Call(f"/instances/{instance_id}?dry_run=true", body)
    if "<instance_id>" in rule:
        if reads:
            instance_id = world.instance[target]
        else:
            instance_id = fresh_instance(world, target, failed=rule.endswith("/retry"))
        touched = {"instances": ("id", instance_id), "events": ("instance_id", instance_id)}
        return Call(rule.replace("<instance_id>", instance_id), {}, {} if reads else touched)
    if rule.startswith("/hosts"):
        if rule == "/hosts" and method == "POST":
            name = world.unique("h")
            touched = {
                "hosts": ("name", name),
                "host_disks": ("host_id", lambda: row_id(world, Host, name)),
            }
            return Call(rule, {"json": host_body(name)}, touched)
        if reads:
            return Call(rule.replace("<name>", "node01"), {})
        name = world.unique("h")
        assert client.post(f"{API}/hosts", json=host_body(name), headers=admin).status_code == 201
        touched = {"hosts": ("name", name), "host_disks": ("host_id", row_id(world, Host, name))}
        body = {"json": {"state": "drain"}} if method == "PATCH" else {}
        return Call(rule.replace("<name>", name), body, touched)
    if rule.startswith("/networks"):
        if reads:
            return Call(rule.replace("<name>", "lan"), {})
        name, k = world.unique("n"), next(world.counter)
        network = {"name": name, "cidr": f"10.{100 + k // 250}.{k % 250}.0/24"}
        touched = {"networks": ("name", name)}
        if method == "POST":
            return Call(rule, {"json": network}, touched)
        assert client.post(f"{API}/networks", json=network, headers=admin).status_code == 201
        touched["addresses"] = ("network_id", row_id(world, Network, name))
        return Call(rule.replace("<name>", name), {}, touched)
    if rule.startswith(("/users", "/quotas", "/audit")):
        return account_call(world, method, rule, caller)
    if rule.startswith("/services"):
        if rule == "/services" and method == "POST":
            name = world.unique("s")
            return Call(
                rule, {"json": {"name": name, "version": "1"}}, {"services": ("name", name)}
            )
        if rule == "/services/<name>/<version>" and method == "POST":
            # the target (the new instance) is known from the answer only
            return Call("/services/tiny/1", {"json": {"n": 1}})
        if rule.endswith("/plan"):
            return Call("/services/tiny/1/plan", {"json": {"n": 1}})
        if reads:
            return Call(rule.replace("<name>", "tiny").replace("<version>", "1"), {})
        # a write on one service version: a fresh one, so that any outcome harms nobody
        name = world.unique("s")
        add_service(client, admin, name, "1")
        part = rule.rsplit("/", 1)[-1]
        data = {
            "template": TINY_TEMPLATE,
            "options": TINY_OPTIONS,
            "orquestrator": TINY_ORQUESTRATOR,
            "orchestrator": TINY_ORQUESTRATOR,
        }.get(part)
        kwargs = {}
        if data is not None:
            raw = data if isinstance(data, str) else json.dumps(data)
            kwargs = {"data": raw, "content_type": "application/json"}
        path = rule.replace("<name>", name).replace("<version>", "1")
        return Call(path, kwargs, {"services": ("name", name)})
    return Call(rule, {})


def check_confined(before, after, call: Call, what: str) -> None:
    """Only the target's rows changed."""
    for table, changed in changed_rows(before, after):
        assert table in call.target, f"{what}: changed {table} {changed}"
        column, value = call.target[table]
        value = value() if callable(value) else value  # known once the call made the row
        assert changed[column] == value, f"{what}: changed another {table} row: {changed}"


@pytest.mark.parametrize(
    ("method", "rule", "target", "caller"),
    CASES,
    ids=[f"{m} {r} [{t}] {c}" for m, r, t, c in CASES],
)
def test_authorization_matrix(world, method, rule, target, caller):
    expected = EXPECTED[(method, rule)][target][caller]
    call = build_call(world, method, rule, target, caller)
    headers = world.headers[caller]
    before = db_state(world.app)
    response = world.client.open(API + call.path, method=method, headers=headers, **call.kwargs)
    after = db_state(world.app)
    what = f"{method} {call.path} as {caller}"
    assert response.status_code == expected, (what, response.get_data(as_text=True)[:300])

    if response.status_code >= 400:
        assert_unchanged(before, after, what)
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}[response.status_code]
        assert error_of(response)["code"] == code
    elif method == "POST" and rule == "/services/<name>/<version>":
        body = response.get_json()
        assert body["user"] == world.names[caller]
        call.target = {"instances": ("id", body["id"]), "events": ("instance_id", body["id"])}
        check_confined(before, after, call, what)
        assert len(changed_rows(before, after)) == 2  # the instance and its launch event
    elif method == "GET" or rule.endswith("/plan") or "dry_run=true" in call.path:
        assert_unchanged(before, after, what)
    else:
        assert call.target, what
        if "<instance_id>" not in rule:
            # every other write is an admin action (or a token's rotation): one audit line
            call.target["audit_events"] = ("actor", world.names[caller])
            audited = [t for t, _ in changed_rows(before, after) if t == "audit_events"]
            assert len(audited) == 1, f"{what}: {len(audited)} audit lines"
        check_confined(before, after, call, what)
        assert changed_rows(before, after), f"{what}: answered {response.status_code}, did nothing"
    if rule == "/users/me/token" and response.status_code == CREATED:
        world.headers[caller] = bearer(response.get_json()["token"])  # the old one is refused

    text = response.get_data(as_text=True)
    if caller not in ("user_a", "admin"):
        assert PRIVATE not in text, what
    if response.status_code == 404 and "<instance_id>" in rule:
        # the same answer as for an instance that never existed: no existence oracle
        instance_id = call.path.split("/")[2].split("?")[0]
        assert error_of(response)["message"] == f"instance {instance_id} not found"
    if rule == "/instances" and response.status_code == 200:
        items = response.get_json()["items"]
        owners = {item["user"] for item in items}
        seen = {item["id"] for item in items}
        if caller == "admin":
            assert set(world.instance.values()) <= seen
        else:
            assert owners <= {world.names[caller]}, (caller, owners)
            assert (world.instance["a"] in seen) == (caller == "user_a")
            assert world.instance["admin"] not in seen


# --------------------------------------------------------------------------- around the table


@pytest.mark.parametrize(
    "query",
    ["user=alice", "user=admin", "user=bob&service=tiny", "service=tiny&user=alice&page=1"],
)
def test_users_cannot_widen_the_instance_list_with_a_filter(world, query):
    response = world.client.get(f"{API}/instances?{query}", headers=world.headers["user_b"])
    assert response.status_code == 400
    assert error_of(response)["details"]["problems"] == [
        {"field": "user", "message": "only admins can filter by user"}
    ]


@pytest.mark.parametrize(
    "query", ["", "service=tiny", "version=1", "status=pending", "per_page=500", "page=1"]
)
def test_filters_only_narrow_a_users_own_list(world, query):
    for caller in ("user_a", "user_b"):
        response = world.client.get(f"{API}/instances?{query}", headers=world.headers[caller])
        assert response.status_code == 200
        owners = {item["user"] for item in response.get_json()["items"]}
        assert owners <= {world.names[caller]}, (caller, query, owners)


def test_the_admin_filter_by_user_shows_only_that_user(world):
    response = world.client.get(f"{API}/instances?user=alice", headers=world.headers["admin"])
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert world.instance["a"] in {item["id"] for item in items}
    assert {item["user"] for item in items} == {"alice"}


@pytest.mark.parametrize("caller", ["user_a", "user_b"])
def test_a_user_cannot_make_an_admin_nor_become_one(world, caller):
    before = db_state(world.app)
    for body in (
        {"name": "mallory", "role": "admin"},
        {"name": world.names[caller], "role": "admin"},
    ):
        response = world.client.post(f"{API}/users", json=body, headers=world.headers[caller])
        assert response.status_code == 403
    assert_unchanged(before, db_state(world.app), caller)


def test_a_users_launch_of_someone_elses_instance_id_is_impossible(world):
    """An instance id, options or user name in a launch body never picks the owner."""
    response = world.client.post(
        f"{API}/services/tiny/1",
        json={"n": 1, "user": "alice", "id": world.instance["a"]},
        headers=world.headers["user_b"],
    )
    assert response.status_code == 400
    fields = {p["field"] for p in error_of(response)["details"]["problems"]}
    assert fields == {"user", "id"}


@pytest.mark.parametrize("token_of", ["user_a", "user_b"])
def test_user_tokens_are_not_admin_tokens_through_basic_auth_either(world, token_of):
    import base64

    token = world.headers[token_of]["Authorization"].removeprefix("Bearer ")
    basic = {"Authorization": "Basic " + base64.b64encode(f"admin:{token}".encode()).decode()}
    assert world.client.get(f"{API}/users", headers=basic).status_code == 403
    assert world.client.get(f"{API}/hosts", headers=basic).status_code == 403


def test_the_private_log_line_is_readable_by_its_owner_and_the_admin(world):
    """The marker the matrix looks for is really there, so its absence means something."""
    for caller in ("user_a", "admin"):
        response = world.client.get(
            f"{API}/instances/{world.instance['a']}/logs", headers=world.headers[caller]
        )
        assert PRIVATE in response.get_data(as_text=True)
