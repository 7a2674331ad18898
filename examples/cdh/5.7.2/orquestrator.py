#!/usr/bin/env python3
"""Orquestrator of the cdh 5.7.2 service (simulated deployment, stdlib only).

Contract (DESIGN.md section 9): the platform runs `python3 orquestrator.py start|stop|status`
in a private working directory (the current directory) with these environment variables:
  PAAS_INSTANCE_FILE  JSON file of the placed instance: {"id", "service", "version", "user",
                      "options": {...}, "nodes": [{"name", "host", "address", "cpu", "mem",
                      "disks": [{"name", "origin", "destination", "type"}], ...}], "services": {...}}
  PAAS_INSTANCE_ID, PAAS_SERVICE, PAAS_VERSION, PAAS_USER, PAAS_WORKDIR
Exit codes: 0 success; 2 usage error or missing/invalid instance file (message on stderr);
`status` exits 3 when the cluster is not running.
This sample only simulates: `start` prints every node with its disks and the HDFS/YARN role
map (which node runs namenode, resourcemanager, datanodes, nodemanagers) and records
state.json; `stop` prints the teardown in reverse order and removes state.json.
"""
import json
import os
import sys

STATE = "state.json"
ROLES = [("HDFS", "namenode"), ("YARN", "resourcemanager"), ("HDFS", "datanode"), ("YARN", "nodemanager")]


def fail(message, code=2):
    print("cdh orquestrator: " + message, file=sys.stderr)
    sys.exit(code)


def load_instance():
    path = os.environ.get("PAAS_INSTANCE_FILE")
    if not path:
        fail("PAAS_INSTANCE_FILE is not set")
    try:
        with open(path) as f:
            inst = json.load(f)
    except (OSError, ValueError) as e:
        fail("cannot read instance file %s: %s" % (path, e))
    if not isinstance(inst, dict) or not isinstance(inst.get("nodes"), list) or not inst["nodes"]:
        fail("invalid instance file %s: 'nodes' must be a non-empty list" % path)
    for node in inst["nodes"]:
        if not isinstance(node, dict) or not node.get("name"):
            fail("invalid instance file %s: every node needs a 'name'" % path)
    return inst


def disk_dests(node):
    disks = node.get("disks") or []
    if isinstance(disks, dict):  # tolerate the spec's {name: disk} shape
        disks = list(disks.values())
    return sorted(d.get("destination", "?") for d in disks)


def start():
    inst = load_instance()
    iid = inst.get("id") or os.environ.get("PAAS_INSTANCE_ID", "0")
    nodes = {n["name"]: n for n in inst["nodes"]}
    services = inst.get("services") or {}
    for node in inst["nodes"]:
        dests = disk_dests(node)
        print("%s on %s (%s): %d cpu, %d MB, %d disks %s" % (
            node["name"], node.get("host", "?"), node.get("address", "?"), node.get("cpu", 0),
            node.get("mem", 0), len(dests), ",".join(dests) or "-"))
    roles = {}
    for system, role in ROLES:
        members = ([n for n in (services.get(role) or {}).get("nodes", []) if n in nodes]
                   or [n["name"] for n in inst["nodes"] if role in (n.get("services") or [])])
        if not members:
            fail("service %r has no nodes in the instance" % role, 1)
        roles[role] = members
        where = ", ".join("%s@%s" % (n, nodes[n].get("host", "?")) for n in members)
        print("%s %-15s -> %s" % (system, role, where))
    master = nodes[roles["namenode"][0]]
    heap = (services.get("datanode") or {}).get("heap", (inst.get("options") or {}).get("datanode.heap"))
    dirs = sorted({d for n in roles["datanode"] for d in disk_dests(nodes[n])})
    print("fs.defaultFS = hdfs://%s:%s" % (master.get("address", master["name"]), master.get("port", 8020)))
    print("yarn.resourcemanager.hostname = %s" % nodes[roles["resourcemanager"][0]].get("address", "?"))
    print("dfs.datanode.data.dir = %s" % (",".join("file://%s/dfs/dn" % d for d in dirs) or "(default)"))
    print("datanode heap = %s MB" % heap)
    state = {"id": iid, "roles": roles, "namenode": master["name"], "datanode_heap": heap}
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f, indent=2)
    os.replace(STATE + ".tmp", STATE)
    print("cdh cluster %s started: %d datanodes, %d nodemanagers" % (
        iid, len(roles["datanode"]), len(roles["nodemanager"])))


def stop():
    try:
        with open(STATE) as f:
            state = json.load(f)
    except FileNotFoundError:
        print("nothing to stop: the cluster was not started")
        return
    except ValueError:
        state = {}
    roles = state.get("roles") or {}
    for _system, role in reversed(ROLES):
        for name in roles.get(role, []):
            print("stopping %s on %s" % (role, name))
    os.remove(STATE)
    print("cdh cluster %s stopped" % state.get("id", "?"))


def status():
    running = os.path.exists(STATE)
    print("running" if running else "not running")
    sys.exit(0 if running else 3)


def main(argv):
    commands = {"start": start, "stop": stop, "status": status}
    if len(argv) != 2 or argv[1] not in commands:
        fail("usage: orquestrator.py start|stop|status (got: %s)" % (" ".join(argv[1:]) or "nothing"))
    commands[argv[1]]()


if __name__ == "__main__":
    main(sys.argv)
