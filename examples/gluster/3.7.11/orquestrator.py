#!/usr/bin/env python3
"""Orquestrator of the gluster 3.7.11 service (simulated deployment, stdlib only).

Contract (DESIGN.md section 9): the platform runs `python3 orquestrator.py start|stop|status`
in a private working directory (the current directory) with these environment variables:
  PAAS_INSTANCE_FILE  JSON file of the placed instance: {"id", "service", "version", "user",
                      "options": {...}, "nodes": [{"name", "host", "address", "cpu", "mem",
                      "disks": [{"name", "origin", "destination", "type"}], ...}], "services": {...}}
  PAAS_INSTANCE_ID, PAAS_SERVICE, PAAS_VERSION, PAAS_USER, PAAS_WORKDIR
Exit codes: 0 success; 2 usage error or missing/invalid instance file (message on stderr);
`status` exits 3 when the cluster is not running.
This sample only simulates: `start` prints the bricks of every node and the `gluster volume
create` command it would run, and records state.json; `stop` prints the teardown and removes it.
"""
import json
import os
import sys

STATE = "state.json"


def fail(message, code=2):
    print("gluster orquestrator: " + message, file=sys.stderr)
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


def disk_list(node):
    disks = node.get("disks") or []
    if isinstance(disks, dict):  # tolerate the spec's {name: disk} shape
        disks = [dict(d, name=n) for n, d in disks.items()]
    return sorted(disks, key=lambda d: d.get("destination", ""))


def start():
    inst = load_instance()
    iid = inst.get("id") or os.environ.get("PAAS_INSTANCE_ID", "0")
    opts = inst.get("options") or {}
    replica = int((inst.get("services") or {}).get("glusterd", {}).get("volume_replica")
                  or opts.get("volume.replica", 1))
    columns = []
    for node in inst["nodes"]:
        dests = [d.get("destination", "?") for d in disk_list(node)]
        print("%s on %s (%s): %d bricks %s" % (node["name"], node.get("host", "?"),
              node.get("address", "?"), len(dests), ",".join(dests)))
        columns.append(["%s:%s/brick" % (node["name"], d) for d in dests])  # node names resolve
    # Disk-major order so that consecutive bricks (one replica set) sit on different servers.
    bricks = [col[i] for i in range(max(len(c) for c in columns)) for col in columns if i < len(col)]
    if not bricks:
        fail("no bricks: the nodes have no disks", 1)
    if len(bricks) % replica:
        fail("%d bricks is not a multiple of volume.replica=%d" % (len(bricks), replica), 1)
    volume = "vol%s" % iid
    for node in inst["nodes"][1:]:
        print("would run on %s: gluster peer probe %s" % (inst["nodes"][0]["name"], node["name"]))
    cmd = "gluster volume create %s%s transport tcp %s" % (
        volume, " replica %d" % replica if replica > 1 else "", " ".join(bricks))
    cmd += " force" if replica > max(1, len(columns)) else ""  # replicas share a server
    print("would run: " + cmd)
    print("would run: gluster volume start %s" % volume)
    state = {"id": iid, "volume": volume, "replica": replica, "bricks": bricks,
             "nodes": [n["name"] for n in inst["nodes"]], "command": cmd}
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f, indent=2)
    os.replace(STATE + ".tmp", STATE)
    print("gluster volume %s started (%d bricks, replica %d)" % (volume, len(bricks), replica))


def stop():
    try:
        with open(STATE) as f:
            state = json.load(f)
    except FileNotFoundError:
        print("nothing to stop: the cluster was not started")
        return
    except ValueError:
        state = {}
    volume = state.get("volume", "?")
    print("would run: gluster --mode=script volume stop %s" % volume)
    print("would run: gluster --mode=script volume delete %s" % volume)
    for name in state.get("nodes", []):
        print("stopping glusterd on %s" % name)
    os.remove(STATE)
    print("gluster volume %s removed" % volume)


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
