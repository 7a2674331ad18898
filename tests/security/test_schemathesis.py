"""Generated requests against the served OpenAPI document (schemathesis, in process over WSGI).

Every operation of GET /bigdata/api/v1/openapi.json is driven with schemathesis' examples,
coverage (boundary values) and fuzzing phases, in positive and negative modes, as the admin
and as a plain user, on an app with the example catalog and inventory loaded. Every answer must
be no 5xx and conform to the document: a declared status code, a declared content type, a body
and headers that match the declared schema. The requests are counted, and there must be at
least ``MIN_REQUESTS`` of them.

Deterministic: Hypothesis is derandomized and keeps no example database (no .hypothesis/).
"""

from __future__ import annotations

import collections
import threading

import hypothesis
import pytest
import schemathesis
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete, update

from bigdata_paas.models import Setting, User
from bigdata_paas.operations.users import create_user, hash_token
from tests.api.support import LEAKS
from tests.conftest import (
    ADMIN_TOKEN,
    base_env,
    bearer,
    load_example_hosts,
    make_app,
    register_example,
)

pytestmark = pytest.mark.security

API = "/bigdata/api/v1"
#: the total of generated requests that the two identities must reach together
MIN_REQUESTS = 5000
#: Hypothesis examples per operation and identity (the explicit and coverage phases add more)
EXAMPLES_PER_OPERATION = 65

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

#: generated requests per identity, and the failures seen (each also fails its subtest)
SENT: collections.Counter[str] = collections.Counter()
FAILURES: list[str] = []
#: answers per identity and status code
STATUSES: collections.defaultdict[str, collections.Counter[int]] = collections.defaultdict(
    collections.Counter
)
#: cases seen per operation (which of them aim at known resources)
AIMED: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


@pytest.fixture(scope="module", autouse=True)
def hypothesis_storage(tmp_path_factory):
    """Keep Hypothesis' files (its cache of source constants) out of the work tree."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    """An app with the example services, hosts and networks, and a plain user."""
    # Streams and long-polls end after 0.01 s: each answer is read whole, and no worker runs.
    root = tmp_path_factory.mktemp("schemathesis")
    app = make_app(base_env(root / "var", PAAS_STREAM_MAX_AGE="0.01"))
    client = app.test_client()
    register_example(client, bearer(ADMIN_TOKEN), "gluster", "3.7.11")
    register_example(client, bearer(ADMIN_TOKEN), "cdh", "5.7.2")
    load_example_hosts(client, bearer(ADMIN_TOKEN))
    token = create_user(app.extensions["paas"], "fuzzer", "user", actor="admin")["token"]
    headers = {"admin": bearer(ADMIN_TOKEN), "user": bearer(token)}
    instances = {}
    for identity, auth in headers.items():
        response = client.post(f"{API}/services/gluster/3.7.11", json={}, headers=auth)
        assert response.status_code == 202, response.get_json()
        instances[identity] = response.get_json()["id"]
    app.config["FUZZ_HEADERS"] = headers
    app.config["FUZZ_TOKENS"] = {"admin": ADMIN_TOKEN, "fuzzer": token}
    app.config["FUZZ_INSTANCES"] = instances
    yield app
    app.extensions["paas"].db.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    """The served OpenAPI document (it needs the admin's token), bound to the app over WSGI."""
    return schemathesis.openapi.from_wsgi(
        f"{API}/openapi.json", fuzz_app, headers=bearer(ADMIN_TOKEN)
    )


#: Hypothesis settings of every operation's test (schemathesis adds its explicit examples and
#: coverage cases, boundary values of every parameter, before these generated ones)
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


#: every KNOWN_EVERY-th case of an operation with path parameters names resources that exist
KNOWN_EVERY = 3


def aim_at_known_resources(case, instance_id: str) -> None:
    """Point some cases at the seeded services, hosts, network and instance.

    Generated path parameters (``{name}``, ``{instance_id}``) almost never name something
    that exists, so without this the answers would nearly all be 404s.
    """
    with _lock:
        AIMED[case.operation.label] += 1
        turn = AIMED[case.operation.label]
    if not case.path_parameters or turn % KNOWN_EVERY:
        return
    path = case.operation.path.removeprefix(API)
    known = {"instance_id": instance_id}
    if path.startswith("/services"):
        known |= {"name": "gluster", "version": "3.7.11"}
    elif path.startswith("/hosts"):
        known["name"] = ("node01", "node02", "node03", "node04")[turn // KNOWN_EVERY % 4]
    elif path.startswith("/networks"):
        known["name"] = "demo"
    elif path.startswith("/users"):
        known["name"] = "fuzzer"
    case.path_parameters.update({k: v for k, v in known.items() if k in case.path_parameters})


def restore_accounts(app) -> None:
    """Undo what a generated request may have done to the two identities' accounts (a
    rotated, revoked or expiring token, a disabled user, a quota of 0), so that the requests
    after it are still made as someone."""
    with app.extensions["paas"].db.session() as session:
        for name, token in app.config["FUZZ_TOKENS"].items():
            session.execute(
                update(User)
                .where(User.name == name)
                .values(
                    token_hash=hash_token(token), disabled=False, token_expires_at=None, quota=None
                )
            )
        session.execute(delete(Setting).where(Setting.key == "default_quota"))
        session.commit()


def send_and_check(case, identity: str, headers: dict[str, str], instance_id: str, app) -> None:
    """One generated request: send it as ``identity``, count it, check the answer."""
    aim_at_known_resources(case, instance_id)
    response = case.call(headers=headers)
    path = case.operation.path.removeprefix(API)
    if case.method.upper() != "GET" and path.startswith(("/users/", "/quotas")):
        restore_accounts(app)
    with _lock:
        SENT[identity] += 1
        STATUSES[identity][response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
        leak = LEAKS.search(response.text)
        assert leak is None, f"response leaks {leak.group(0)!r}: {response.text[:300]}"
    except Exception as exc:
        with _lock:
            FAILURES.append(f"{identity} {case.operation.label}: {exc}")
        raise


@pytest.mark.parametrize("identity", ["admin", "user"])
def test_generated_requests_conform_to_the_document(api_schema, fuzz_app, identity, subtests):
    # The schemathesis pytest loader (``from_fixture``) of 4.32 writes ``Node._nodeid``, which
    # pytest 9 no longer has; its builder of one Hypothesis test per operation (examples,
    # coverage and fuzzing phases, positive and negative modes) is used directly instead.
    headers = fuzz_app.config["FUZZ_HEADERS"][identity]
    FAILURES.clear()
    before = SENT[identity]
    operations = 0
    for result in get_all_tests(
        schema=api_schema, test_func=send_and_check, settings=SETTINGS, given_kwargs={}
    ):
        operation, test = result.ok()
        operations += 1
        with subtests.test(operation=operation.label):
            test(
                identity=identity,
                headers=headers,
                instance_id=fuzz_app.config["FUZZ_INSTANCES"][identity],
                app=fuzz_app,
            )
    assert operations >= 30
    assert not FAILURES, "\n\n".join(FAILURES[:10])
    sent = SENT[identity] - before
    statuses = STATUSES[identity]
    print(f"{identity}: {sent} generated requests over {operations} operations: {statuses}")
    assert sent >= MIN_REQUESTS // 2, SENT
    # the token is honoured (not every answer a 401) and requests reach the views' success paths
    assert statuses[401] < sent / 2, statuses
    assert sum(n for code, n in statuses.items() if code < 300) >= sent / 20, statuses
    if identity == "user":
        assert statuses[403] > 0, statuses
