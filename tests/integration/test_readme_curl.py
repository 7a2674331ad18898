"""The original README's curl calls against a live stack started the way ``make run`` does.

The stack (``live_stack``, tests/integration/conftest.py): ``flask --app wsgi paas setup``, then
gunicorn and a Celery worker, all on an isolated data dir, queue prefix and port; the calls run
with the real ``curl`` binary from the example folders (for ``@service-template.json``), each
with the bearer token added (DESIGN.md section 4).
"""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES, wait_until

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


def test_original_readme_calls_register_and_launch(live_stack):
    output = live_stack.flask("load-hosts", "examples/inventory.json")
    assert [line.split(":")[0] for line in output.splitlines()] == [
        "network demo",
        "host node01",
        "host node02",
        "host node03",
        "host node04",
        "examples/inventory.json",
    ], output

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

    gluster_body = wait_until(lambda: running(gluster_instance["id"]), "gluster running")
    cdh_body = wait_until(lambda: running(cdh_instance["id"]), "cdh running")
    assert sorted(n["name"] for n in gluster_body["nodes"]) == ["gluster0", "gluster1"]
    assert sorted(n["name"] for n in cdh_body["nodes"]) == ["master0", "slave0", "slave1", "slave2"]
    assert all(node["host"] for node in [*gluster_body["nodes"], *cdh_body["nodes"]])

    code, logs = live_stack.get(f"/instances/{cdh_instance['id']}/logs")
    assert code == 200
    lines = [line["line"] for line in logs["lines"]]
    assert f"cdh cluster {cdh_instance['id']} started: 3 datanodes, 3 nodemanagers" in lines
    assert "Traceback" not in live_stack.web_log.read_text()
