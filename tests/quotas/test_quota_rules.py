"""The quota rules as the launch and a resize call them: what a spec holds, what is over."""

from __future__ import annotations

from bigdata_paas.models import User
from bigdata_paas.operations.quotas import Usage, excesses, usage_of_spec
from tests.api.support import launch


def test_a_spec_holds_its_nodes_cores_memory_and_disks():
    spec = {
        "nodes": {
            "master": {"cpu": 2, "mem": 1024, "disks": {"d0": {}, "d1": {}}},
            "slave1": {"cpu": 1, "mem": 512, "disks": {}},
        }
    }
    assert usage_of_spec(spec) == Usage(instances=1, nodes=2, cpu=3, mem=1536, disks=2)
    assert usage_of_spec({"nodes": {}}, instances=0) == Usage()


def test_only_what_a_request_adds_can_be_over(app, client, make_user):
    alice = make_user("alice")
    launch(client, alice, "sized", "1", {"n": 3, "cpu": 2})
    rt = app.extensions["paas"]
    with rt.db.session() as session:
        user = session.query(User).filter_by(name="alice").one()
        user.quota = {"nodes": 2, "cpu": 4}  # lowered below what alice holds
        session.commit()
        # a resize that adds nodes is over on each dimension it adds to
        assert excesses(session, rt.config, user.id, Usage(nodes=1, cpu=2)) == [
            {"resource": "nodes", "requested": 1, "used": 3, "limit": 2},
            {"resource": "cpu", "requested": 2, "used": 6, "limit": 4},
        ]
        session.rollback()
        # one that removes nodes, or adds only what is unlimited, is never refused
        assert excesses(session, rt.config, user.id, Usage(nodes=-1, cpu=-2)) == []
        assert excesses(session, rt.config, user.id, Usage(mem=10**6, disks=5)) == []
