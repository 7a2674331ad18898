"""fast_dump (the hot read's serializer) answers what the schema's own dump answers: the same
keys, values and order, for every shape an instance takes, and for values of other types."""

from __future__ import annotations

import json

import pytest
from marshmallow import Schema, fields

from bigdata_paas.api.schemas import InstanceOut, InstanceSummary, dump_instance, fast_dump


def node(name: str, **changes) -> dict:
    body = {
        "name": name,
        "cpu": 2,
        "mem": 4096,
        "host": "host1",
        "address": "10.88.0.10",
        "disks": [{"name": "d0", "destination": "/data/0", "host_disk": "sda", "size": 10}],
        "networks": {"eth0": {"address": "10.88.0.10", "prefixlen": 23}},
        "services": ["datanode", "nodemanager"],
        "check_ports": [50010, 8042],
        "runtime": {
            "state": "running",
            "host": "host1",
            "at": "2024-01-01T00:00:00Z",
            "driver": "podman",
            "runtime_id": "abc",
            "name": "paas-x-slave1",
            "addresses": {"eth0": "10.88.0.10"},
        },
    }
    body.update(changes)
    return body


def instance(**changes) -> dict:
    body = {
        "id": "0123456789abcdef0123456789abcdef",
        "name": "cdh-01234567",
        "service": "cdh",
        "version": "5.7.2",
        "user": "alice",
        "status": "running",
        "options": {"slaves.number": 2},
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:01Z",
        "merged_options": {"slaves.number": 2, "master.mem": 1024},
        "nodes": [node("master"), node("slave1", runtime=None, host=None, address=None)],
        "services": {"hdfs": {"nodes": ["master", "slave1"]}},
    }
    body.update(changes)
    return body


CASES = {
    "running": instance(),
    "no nodes, no merged options yet": instance(status="queued", nodes=[], merged_options=None),
    "queued, waiting": instance(status="queued", waiting_for="no host has 2 cpu free"),
    "failed": instance(status="failed", error={"step": "run", "reason": "exit 1"}),
    "failed, no step": instance(status="failed", error={"step": None, "reason": None}),
    "updating": instance(
        status="updating",
        resize={"action": "scale-out", "added": ["slave2"], "removed": [], "options": {"a": 1}},
    ),
    "no owner": instance(user=None),
    "a failed node, runtime keys the schema does not name": instance(
        nodes=[
            node(
                "master",
                runtime={"state": "failed", "error": "oom", "extra": 1, "addresses": None},
            )
        ]
    ),
    "values of other types": instance(
        version=572,
        nodes=[
            node(
                "master",
                cpu="2",
                mem=4096.0,
                services=["hdfs", 7, None],
                check_ports=["8080", 9090.0, None],
                runtime={"addresses": {"eth0": 5, "eth1": None}, "runtime_id": 12},
            )
        ],
    ),
    "keys the schema does not name": instance(spec={"nodes": {}}, held_cpu=4),
    "without nodes (as a listing)": {
        k: v for k, v in instance().items() if k not in ("nodes", "merged_options", "services")
    },
}


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_dump_instance_answers_what_the_schema_dumps(body):
    expected = InstanceOut().dump(body)
    got = dump_instance(body)
    assert got == expected
    # the same order too: the bytes sent are the same
    assert json.dumps(got) == json.dumps(expected)


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_a_schema_that_excludes_fields_is_followed(body):
    assert json.dumps(fast_dump(InstanceSummary())(body)) == json.dumps(
        InstanceSummary().dump(body)
    )


def test_a_field_without_a_fast_path_is_refused_when_made():
    class WithBoolean(Schema):
        flag = fields.Boolean()

    class WithDefault(Schema):
        name = fields.String(dump_default="x")

    class WithMany(Schema):
        items = fields.Nested(WithDefault, many=True)

    for schema in (WithBoolean, WithDefault, WithMany):
        with pytest.raises(TypeError):
            fast_dump(schema())


def test_data_keys_and_attributes_are_followed():
    class Renamed(Schema):
        schema = fields.String(attribute="$schema", data_key="$schema")
        count = fields.Integer(data_key="n")

    body = {"$schema": "https://json-schema.org", "count": "3", "other": 1}
    assert fast_dump(Renamed())(body) == Renamed().dump(body)
