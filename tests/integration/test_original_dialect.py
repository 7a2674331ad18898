"""A service written in the original system's dialect, registered as its scripts did, runs.

The dialect (tests/integration/dialect/): numbers quoted, check ports and tags as
comma-separated text, ``"X"`` where the platform assigns a value, and an options document with
a stale description. It is registered with the real ``curl --data-binary @file`` and no ``-H``
(curl then says ``application/x-www-form-urlencoded``) against a live gunicorn, once as JSON
and once as YAML (sent as ``application/x-yaml``, its options with no Content-Type at all),
launched through a real worker to running, and what is stored, handed to the orquestrator and
answered by the API has the real types.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from bigdata_paas.models import Instance, Node
from tests.conftest import EXAMPLES, loopback_prefix, make_app, wait_until
from tests.examples.helpers import connect
from tests.integration.conftest import load_demo_inventory

pytestmark = pytest.mark.integration

DIALECT = Path(__file__).resolve().parent / "dialect"
ORQUESTRATOR = EXAMPLES / "cdh" / "5.7.2" / "orquestrator.py"
REGISTER = (
    """curl -X POST $API/services -d '{"name": "cdh", "version": "VERSION"}' """
    """-H "Content-type: application/json\""""
)
LAUNCH = """curl -X POST $API/services/cdh/VERSION -d '{}' -H "Content-type: application/json\""""
STALE = [
    {"field": "descriptions.slaves.disks", "message": "describes an undeclared option; left out"}
]
#: the node fields whose types the dialect changes, as every later stage must see them
EXPECTED = {
    "master0": {"cpu": 1, "mem": 2048, "port": 8020, "check_ports": [8020, 8032]},
    "slave0": {"cpu": 1, "mem": 1024, "port": 50010, "check_ports": [50010, 8040]},
    "slave1": {"cpu": 1, "mem": 1024, "port": 50010, "check_ports": [50010, 8040]},
}
TAGS = {"master0": ["master"], "slave0": ["yarn", "slave"], "slave1": ["yarn", "slave"]}
SERVICES = {
    "master0": ["namenode", "resourcemanager"],
    "slave0": ["datanode", "nodemanager"],
    "slave1": ["datanode", "nodemanager"],
}

#: (version, template file, template upload flags, options upload flags, what curl sends)
UPLOADS = [
    ("5.7-orig", "service-template.json", "", "", "application/x-www-form-urlencoded"),
    (
        "5.7-orig-yaml",
        "service-template.yaml",
        '-H "Content-Type: application/x-yaml"',
        '-H "Content-Type:"',
        None,
    ),
]


def put(live_stack, version: str, part: str, path: Path, flags: str = "") -> tuple[int, dict]:
    command = f"curl -v -X PUT $API/services/cdh/{version}/{part} --data-binary @{path} {flags}"
    return live_stack.curl(command, DIALECT)


def sent_content_type(live_stack) -> str | None:
    """The Content-Type the last curl -v sent, or None when it sent none."""
    for line in live_stack.last_stderr.splitlines():
        if line.lower().startswith("> content-type:"):
            return line.split(":", 1)[1].strip()
    return None


def register(live_stack, version, template, template_flags, options_flags, options_type) -> None:
    code, body = live_stack.curl(REGISTER.replace("VERSION", version), DIALECT)
    assert code == 201, body

    code, body = put(live_stack, version, "options", DIALECT / "options.json", options_flags)
    assert code == 200, body
    assert sent_content_type(live_stack) == options_type
    assert body["warnings"] == STALE

    code, body = put(live_stack, version, "template", DIALECT / template, template_flags)
    assert code == 200, body
    assert body["template_format"] == ("yaml" if template.endswith(".yaml") else "json")
    if not template_flags:
        assert sent_content_type(live_stack) == "application/x-www-form-urlencoded"

    code, body = put(live_stack, version, "orquestrator", ORQUESTRATOR)
    assert code == 200, body
    assert sent_content_type(live_stack) == "application/x-www-form-urlencoded"
    assert body["ready"] is True


def test_the_original_dialect_registers_with_curl_and_runs(live_stack, env, tmp_path):
    # no image in these templates: the orquestrator serves the nodes itself, so their pool is
    # loopback (of this test's own)
    prefix = loopback_prefix()
    load_demo_inventory(live_stack, (f"{prefix}.0/24", f"{prefix}.1"), tmp_path)
    launched = {}
    for version, template, template_flags, options_flags, options_type in UPLOADS:
        register(live_stack, version, template, template_flags, options_flags, options_type)
        code, stored = live_stack.get(f"/services/cdh/{version}/options")
        assert code == 200 and "slaves.disks" not in stored["descriptions"], stored
        code, instance = live_stack.curl(LAUNCH.replace("VERSION", version), DIALECT)
        assert code == 202, instance
        launched[version] = instance["id"]

    def running(instance_id: str) -> dict | None:
        code, body = live_stack.get(f"/instances/{instance_id}")
        assert code == 200, body
        assert body["status"] != "failed", body.get("error")
        return body if body["status"] == "running" else None

    for version, instance_id in launched.items():
        body = wait_until(lambda i=instance_id: running(i), f"cdh {version} running")
        # GET /instances/{id}: numbers and lists, never the dialect's text
        nodes = {node["name"]: node for node in body["nodes"]}
        assert set(nodes) == set(EXPECTED)
        for name, node in nodes.items():
            assert (node["cpu"], node["mem"]) == (EXPECTED[name]["cpu"], EXPECTED[name]["mem"])
            assert node["check_ports"] == EXPECTED[name]["check_ports"]
            assert node["services"] == SERVICES[name]
            assert node["host"] != "X" and node["address"] not in (None, "X")
        assert_stored_and_placed(env, instance_id)
        assert_node_server_answers(nodes["master0"], instance_id)


def assert_stored_and_placed(env: dict[str, str], instance_id: str) -> None:
    """The stored spec and the placed nodes (the orquestrator's instance file) hold types."""
    app = make_app(env)
    try:
        with app.extensions["paas"].db.session() as session:
            instance = session.get(Instance, instance_id)
            placed = {
                node.name: node.placement
                for node in session.scalars(select(Node).where(Node.instance_id == instance_id))
            }
            stored = instance.spec["nodes"]
    finally:
        app.extensions["paas"].db.dispose()
    for name, fields in EXPECTED.items():
        for document in (stored[name], placed[name]):
            for field, value in fields.items():
                assert document[field] == value, (name, field, document)
                assert json.dumps(document[field]) == json.dumps(value)  # 1, not "1" nor 1.0
            assert document["tags"] == TAGS[name]
            assert {"id", "status"}.isdisjoint(document), document
        assert placed[name]["host"] not in (None, "X")
    for disk in placed["slave0"]["disks"]:
        assert disk["origin"] != "X", disk


def assert_node_server_answers(node: dict, instance_id: str) -> None:
    """The orquestrator's server for the node answers with the configuration it was given."""
    address = node["address"]
    assert address.startswith("127."), address  # loopback: this machine, never the outside
    answer = json.loads(connect(address, node["check_ports"][0]).decode().splitlines()[0])
    assert (answer["instance"], answer["name"]) == (instance_id, "master0")
    assert answer["ports"] == [8020, 8032]
    assert (answer["cpu"], answer["mem"]) == (1, 2048)
