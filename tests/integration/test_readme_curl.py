"""The original README's curl calls against a live stack started the way ``make run`` does.

The stack (``live_stack``, tests/integration/conftest.py): ``flask --app wsgi paas setup``, then
gunicorn, a Celery worker and the agents of node01..node04 (the Procfile's agent line, with the
driver ``auto`` picks here), all on an isolated data dir, queue prefix and port; the calls run
with the real ``curl`` binary from the example folders (for ``@service-template.json``), each
with the bearer token added (DESIGN.md section 4). The demo pool ``demo`` is made first with an
address range of this test's own, so nothing here meets a demo a user runs on this machine:
``load-hosts examples/inventory.json`` then keeps it. Every node runs on its host's agent and
answers on its own address, as itself; the README's DELETE leaves nothing behind.
"""

from __future__ import annotations

import pytest

from bigdata_paas.agent.local import local_nodes
from config import Config
from tests.conftest import EXAMPLES, ask_node, local_link, node_pool, wait_until
from tests.integration.conftest import load_demo_inventory

pytestmark = pytest.mark.integration

# DESIGN.md section 4, verbatim but for $API; each runs with the auth header added.
REGISTER = [
    '''curl -X POST $API/services -d '{"name":"gluster", "version":"3.7.11", "description": "GlusterFS parallel filesystem cluster"}' -H "Content-type: application/json"''',  # noqa: E501
    '''curl -X PUT $API/services/gluster/3.7.11/template --data-binary @service-template.json -H "Content-type: application/json"''',  # noqa: E501
    '''curl -X PUT $API/services/gluster/3.7.11/options --data-binary @options.json -H "Content-type: application/json"''',  # noqa: E501
    '''curl -X PUT $API/services/gluster/3.7.11/orquestrator --data-binary @orquestrator.py -H "Content-type: application/json"''',  # noqa: E501
]
LAUNCH_GLUSTER = """curl -H "Content-type: application/json" -X POST -d '{"size": 2, "disks": 2}' $API/services/gluster/3.7.11"""  # noqa: E501
LAUNCH_CDH = '''curl -X POST $API/services/cdh/5.7.2 -d '{"slaves.number": 3}' -H "Content-type: application/json"'''  # noqa: E501
DESTROY = "curl -X DELETE $API/instances/{id}"


def test_original_readme_calls_register_and_launch(live_stack, tmp_path):
    cidr, gateway = node_pool()
    output = load_demo_inventory(live_stack, (cidr, gateway), tmp_path)
    assert output.splitlines()[0] == (
        f"network demo: already exists as {cidr}, not 10.20.0.0/24, skipped"
    )
    assert [line.split(":")[0] for line in output.splitlines()] == [
        "network demo",
        "host node01",
        "host node02",
        "host node03",
        "host node04",
        "examples/inventory.json",
    ], output
    # the hosts' agents report (GET /hosts shows them): the nodes will run there
    wait_until(
        lambda: all(h["agent"] for h in live_stack.get("/hosts")[1]["hosts"]),
        lambda: f"every agent's first report: {live_stack.agents_log.read_text()[-3000:]}",
        timeout=90,
    )

    gluster = EXAMPLES / "gluster" / "3.7.11"
    codes = [live_stack.curl(command, gluster)[0] for command in REGISTER]
    cdh = EXAMPLES / "cdh" / "5.7.2"
    cdh_codes = [
        live_stack.curl(
            command.replace("gluster", "cdh")
            .replace("3.7.11", "5.7.2")
            .replace(
                "GlusterFS parallel filesystem cluster",
                "Hadoop cluster based on Cloudera CDH 5.7.2",
            ),
            cdh,
        )[0]
        for command in REGISTER
    ]
    gluster_code, gluster_instance = live_stack.curl(LAUNCH_GLUSTER, gluster)
    cdh_code, cdh_instance = live_stack.curl(LAUNCH_CDH, cdh)
    assert [*codes, gluster_code, cdh_code] == [201, 200, 200, 200, 202, 202]
    assert cdh_codes == [201, 200, 200, 200]
    assert gluster_instance["service"] == "gluster" and gluster_instance["status"] == "pending"
    assert cdh_instance["options"] == {"slaves.number": 3}

    code, detail = live_stack.get("/services/gluster/3.7.11")
    assert code == 200, detail
    assert detail["name"] == "gluster" and detail["version"] == "3.7.11"

    def running(instance_id: str) -> dict | None:
        code, body = live_stack.get(f"/instances/{instance_id}")
        assert code == 200, body
        assert body["status"] != "failed", body.get("error")
        return body if body["status"] == "running" else None

    def state(instance_id: str) -> str:
        return (
            f"{live_stack.get(f'/instances/{instance_id}')[1]}; agents: "
            + (live_stack.agents_log.read_text(errors="replace")[-3000:])
        )

    gluster_body = wait_until(
        lambda: running(gluster_instance["id"]), lambda: state(gluster_instance["id"]), timeout=90
    )
    cdh_body = wait_until(
        lambda: running(cdh_instance["id"]), lambda: state(cdh_instance["id"]), timeout=90
    )
    assert sorted(n["name"] for n in gluster_body["nodes"]) == ["gluster0", "gluster1"]
    assert sorted(n["name"] for n in cdh_body["nodes"]) == ["master0", "slave0", "slave1", "slave2"]
    assert all(node["host"] for node in [*gluster_body["nodes"], *cdh_body["nodes"]])

    code, logs = live_stack.get(f"/instances/{cdh_instance['id']}/logs")
    assert code == 200
    lines = [line["line"] for line in logs["lines"]]
    assert f"cdh cluster {cdh_instance['id']} started: 3 datanodes, 3 nodemanagers" in lines
    assert "Traceback" not in live_stack.web_log.read_text()

    # every node runs on the agent of its host and answers on its own address, as itself
    config = Config.from_env(live_stack.env)
    for instance, body in ((gluster_instance, gluster_body), (cdh_instance, cdh_body)):
        for node in body["nodes"]:
            runtime = node["runtime"]
            assert runtime["state"] == "running" and runtime["host"] == node["host"], node
            assert runtime["driver"] in ("podman", "process")
            answer = ask_node(node["address"], node["check_ports"][0])
            assert answer is not None, node
            assert (answer["instance"], answer["node"], answer["host"]) == (
                instance["id"],
                node["name"],
                node["host"],
            )
    assert len(local_nodes(config)) == 6
    code, logs = live_stack.get(f"/instances/{gluster_instance['id']}/logs")
    said = [line["line"] for line in logs["lines"]]
    assert any(x.startswith("gluster0: ") and "answers as itself on" in x for x in said), said

    # the README's destroy: every node and its address go
    for instance in (gluster_instance, cdh_instance):
        code, _body = live_stack.curl(DESTROY.format(id=instance["id"]), EXAMPLES)
        assert code == 202
    for instance in (gluster_instance, cdh_instance):
        wait_until(
            lambda i=instance: live_stack.get(f"/instances/{i['id']}")[1]["status"] == "destroyed",
            f"{instance['service']} destroyed",
        )
    assert local_nodes(config) == []
    for node in [*gluster_body["nodes"], *cdh_body["nodes"]]:
        assert not local_link(node["address"]) or ask_node(node["address"], 24007) is None
