#!/usr/bin/env python3
# paas-actions: scale-out decommission
"""Orquestrator of the cdh 5.7.2 service: nodes run by host agents, or one local server per
node (stdlib only).

Contract (docs/orquestrators.md): the platform runs `python3 orquestrator.py start|stop|status`
(and `scale-out|decommission` when a running instance is resized, with PAAS_CHANGED_NODES_FILE
and PAAS_PREVIOUS_INSTANCE_FILE besides) in a private working directory (the current
directory, also PAAS_WORKDIR) with:
  PAAS_INSTANCE_FILE  JSON file of the placed instance: {"id", "service", "version", "user",
                      "options": {...}, "nodes": [{"name", "host", "address", "port",
                      "check_ports", "services", "cpu", "mem", "disks": [{"name",
                      "origin", "destination", "type"}], "runtime": {...} or null, ...}],
                      "services": {...}}
  PAAS_INSTANCE_ID, PAAS_SERVICE, PAAS_VERSION, PAAS_USER, PAAS_WORKDIR
Exit codes: 0 success; 1 the cluster cannot be started (message on stderr); 2 usage error or
missing/invalid instance file; `status` exits 3 when a node's server is not running.

What it deploys where no agent runs the nodes (the original's way): no real Hadoop (that needs
the CDH packages), but one small local server per node, bound to the node's address and to
every port in its check_ports (master: 8020 namenode, 8032 resourcemanager; slaves: 50010
datanode, 8040 nodemanager), that answers anyone who connects (plain TCP or HTTP) with one line
of JSON: the node's own configuration (name, role, host, address, disks, fs.defaultFS, data
dirs). `start` prints the HDFS/YARN role map.

Where the nodes' hosts run agents (nodes with a `runtime`: docs/orquestrators.md), each node
runs already, a container of the paas-node image (or a process standing in for it) serving its
own placed configuration on its check ports: `start` connects to every check port of every
node, checks that the node answers as itself (its name and instance), and prints the commands
and settings a deployment would apply; `stop` stops nothing of its own (the platform stops the
nodes through their agents).
"""

import errno
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

SERVICE, VERSION = "cdh", "5.7.2"
ROLES = [
    ("HDFS", "namenode"),
    ("YARN", "resourcemanager"),
    ("HDFS", "datanode"),
    ("YARN", "nodemanager"),
]


def plan(inst):
    """Check the instance and print its layout; return (summary, {node: (role, settings)})."""
    iid = str(inst.get("id") or os.environ.get("PAAS_INSTANCE_ID", "0"))
    nodes = {n["name"]: n for n in inst["nodes"]}
    services = inst.get("services") or {}
    for node in inst["nodes"]:
        dests = [d.get("destination", "?") for d in disk_list(node)]
        print(
            f"{node['name']} on {node.get('host', '?')} ({node['address']}): "
            f"{node.get('cpu', 0)} cpu, {node.get('mem', 0)} MB, "
            f"{len(dests)} disks {','.join(dests) or '-'}"
        )
    roles = {}
    for system, role in ROLES:
        listed = (services.get(role) or {}).get("nodes") or []
        members = [n for n in listed if n in nodes] or [
            n["name"] for n in inst["nodes"] if role in (n.get("services") or [])
        ]
        if not members:
            fail(f"service {role!r} has no nodes in the instance", 1)
        roles[role] = members
        where = ", ".join(f"{n}@{nodes[n].get('host', '?')}" for n in members)
        print(f"{system} {role:<15} -> {where}")
    namenode = nodes[roles["namenode"][0]]
    nn_port = (services.get("namenode") or {}).get("port") or node_ports(namenode)[0]
    rm = nodes[roles["resourcemanager"][0]]
    heap = (services.get("datanode") or {}).get("heap") or (inst.get("options") or {}).get(
        "datanode.heap"
    )
    common = {
        "fs.defaultFS": f"hdfs://{namenode['address']}:{nn_port}",
        "yarn.resourcemanager.hostname": rm["address"],
    }
    print(f"fs.defaultFS = {common['fs.defaultFS']}")
    print(f"yarn.resourcemanager.hostname = {common['yarn.resourcemanager.hostname']}")
    print(f"datanode heap = {heap} MB")
    layout = {}
    for node in inst["nodes"]:
        mine = [role for _system, role in ROLES if node["name"] in roles[role]]
        settings = dict(common, roles=mine)
        if "datanode" in mine:
            dirs = [d.get("destination", "?") for d in disk_list(node)]
            settings["dfs.datanode.data.dir"] = ",".join(f"file://{d}/dfs/dn" for d in dirs)
            settings["datanode.heap"] = heap
        if "namenode" in mine:
            settings["dfs.namenode.name.dir"] = "file:///var/lib/hadoop-hdfs/cache/dfs/name"
        master = "namenode" in mine or "resourcemanager" in mine
        layout[node["name"]] = ("master" if master else "slave", settings)
    summary = {
        "id": iid,
        "started": (
            f"cdh cluster {iid} started: {len(roles['datanode'])} datanodes, "
            f"{len(roles['nodemanager'])} nodemanagers"
        ),
        "teardown": [
            f"stopping YARN: {len(roles['nodemanager'])} nodemanagers, then the resourcemanager",
            f"stopping HDFS: {len(roles['datanode'])} datanodes, then the namenode",
        ],
        "stopped": f"cdh cluster {iid} stopped",
    }
    return summary, layout


# ==== node servers: the same in every example orquestrator (tests/examples checks it) ====
#
# Two kinds of nodes. A node with a `runtime` in the instance file runs already: its host's
# agent started it (a container of the paas-node image, or a process), and it serves its own
# configuration on its check ports. `start` configures and verifies it: it connects to each
# of its check ports and checks that the node answers as itself (its name and instance), and
# prints what a deployment would run there; `stop` leaves it to the platform, which stops it
# through the agent. A node without one (its host has no agent: the original's way) gets a
# small server of this script's own, started by `start` and stopped by `stop`.
#
# Work dir files: nodes/<node>.json (what the node serves), run/<node>.pid, log/<node>.log,
# state.json (what `stop` prints). Each server runs `<python> -I <this script> serve <config>`
# in its own session (so it outlives `start`, whose process group the platform may kill),
# single-threaded (threads count against RLIMIT_NPROC), and exits by itself once its pid file
# is gone or names another process (a removed work dir leaves no server behind).

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
START_TIMEOUT = 20.0  # seconds for every server to listen, plus 0.1 s per node
VERIFY_TIMEOUT = 30.0  # seconds an agent-run node has to answer as itself on every port
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
HTTP_METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"}
STATE = "state.json"


def fail(message, code=2):
    print(f"{SERVICE} orquestrator: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def workdir():
    return os.path.abspath(os.environ.get("PAAS_WORKDIR") or os.getcwd())


def node_files(name):
    base = workdir()
    return (
        os.path.join(base, "nodes", name + ".json"),
        os.path.join(base, "run", name + ".pid"),
        os.path.join(base, "log", name + ".log"),
    )


def is_port(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def node_ports(node):
    ports = node.get("check_ports") or ([node["port"]] if node.get("port") else [])
    return list(dict.fromkeys(ports))


def disk_list(node):
    disks = node.get("disks") or []
    if isinstance(disks, dict):  # tolerate the spec's {name: disk} shape
        disks = [dict(d, name=n) for n, d in disks.items()]
    return sorted(disks, key=lambda d: str(d.get("destination", "")))


def load_instance():
    """The instance file, checked: exit 2 with a message when it is missing or invalid."""
    path = os.environ.get("PAAS_INSTANCE_FILE")
    if not path:
        fail("PAAS_INSTANCE_FILE is not set")
    try:
        with open(path, encoding="utf-8") as f:
            inst = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read instance file {path}: {e}")
    if not isinstance(inst, dict) or not isinstance(inst.get("nodes"), list) or not inst["nodes"]:
        fail(f"invalid instance file {path}: 'nodes' must be a non-empty list")
    seen = set()
    for i, node in enumerate(inst["nodes"]):
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            fail(f"invalid instance file {path}: node {i} needs a 'name'")
        name = node["name"]
        if not NAME_RE.match(name) or name in seen:
            fail(f"invalid instance file {path}: bad or duplicate node name {name!r}")
        seen.add(name)
        if not isinstance(node.get("address"), str) or not node["address"]:
            fail(f"invalid instance file {path}: node {name} has no 'address'")
        ports = node.get("check_ports") or ([node["port"]] if node.get("port") else [])
        if not isinstance(ports, list) or not ports or not all(is_port(p) for p in ports):
            fail(f"invalid instance file {path}: node {name} needs ports (check_ports or port)")
        if not isinstance(node.get("disks") or [], (list, dict)):
            fail(f"invalid instance file {path}: node {name}: 'disks' must be a list")
    if not isinstance(inst.get("services", {}), (dict, type(None))):
        fail(f"invalid instance file {path}: 'services' must be an object")
    return inst


def node_document(inst, node, role, settings):
    """The one line of JSON a node's server answers with."""
    return {
        "instance": str(inst.get("id") or os.environ.get("PAAS_INSTANCE_ID", "")),
        "service": inst.get("service") or SERVICE,
        "version": inst.get("version") or VERSION,
        "name": node["name"],
        "role": role,
        "services": node.get("services") or [],
        "host": node.get("host"),
        "address": node["address"],
        "ports": node_ports(node),
        "cpu": node.get("cpu"),
        "mem": node.get("mem"),
        "disks": [
            {k: d.get(k) for k in ("name", "destination", "origin", "type")}
            for d in disk_list(node)
        ],
        "settings": settings,
    }


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def read_pid(path):
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def server_alive(pid, config_path):
    """True if ``pid`` is a live (not zombie) server of this node, not a reused pid."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat", "rb") as f:
            zombie = f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): the pid alone has to do
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return not zombie and b"serve" in args and os.fsencode(config_path) in args


def answers(address, port, timeout=0.5):
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def server_ready(node, pid):
    """The server ``pid`` logged that it listens, and every port of the node answers."""
    try:
        with open(node_files(node["name"])[2], encoding="utf-8", errors="replace") as f:
            said = f"(pid {pid}) listening on" in f.read()
    except OSError:
        return False
    return said and all(answers(node["address"], port) for port in node_ports(node))


def log_tail(path, lines=3):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return " | ".join(line.strip() for line in f.read().splitlines()[-lines:])
    except OSError:
        return ""


def recorded_servers():
    """[(node, pid, config path)] of every pid file in the work dir."""
    folder = os.path.join(workdir(), "run")
    try:
        names = sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".pid"))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        config, pid_file, _log = node_files(name)
        out.append((name, read_pid(pid_file), config))
    return out


def kill_servers(names=None):
    """SIGTERM every recorded server (of ``names``, when given), SIGKILL those that linger;
    remove the pid files."""
    servers = [s for s in recorded_servers() if names is None or s[0] in names]
    live = [(name, pid, config) for name, pid, config in servers if server_alive(pid, config)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for _name, pid, _config in live:
            try:
                os.killpg(pid, sig)  # the server leads its own session and process group
            except OSError:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + (STOP_TIMEOUT if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline:
            live = [s for s in live if server_alive(s[1], s[2])]
            if not live:
                break
            time.sleep(0.05)
        if not live:
            break
    for name, _pid, _config in servers:
        try:
            os.remove(node_files(name)[1])
        except FileNotFoundError:
            pass
    return servers, live


def run_by_agent(node):
    """The node runs already, started by its host's agent (the instance file says how)."""
    return isinstance(node.get("runtime"), dict)


def ask_node(address, port, timeout=2.0):
    """What a node serves on ``port``: its configuration (a JSON object), or None."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            chunks = []
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        return None
    raw = b"".join(chunks)
    if raw.startswith(b"HTTP/"):
        raw = raw.split(b"\r\n\r\n", 1)[-1]
    try:
        answer = json.loads(raw)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def answers_as_itself(inst, node, port):
    """(True, "") when the node at its address and ``port`` says it is this node of this
    instance; (False, what answered instead) otherwise."""
    answer = ask_node(node["address"], port)
    if answer is None:
        return False, "no answer"
    iid = str(inst.get("id") or os.environ.get("PAAS_INSTANCE_ID", ""))
    said = (str(answer.get("node", answer.get("name"))), str(answer.get("instance")))
    if said != (node["name"], iid):
        return False, f"answered as node {said[0]} of instance {said[1]}"
    return True, ""


def verify_nodes(inst, nodes, layout):
    """Check that every agent-run node answers as itself on all its check ports (waiting
    VERIFY_TIMEOUT at most), and print how each would be configured; exit 1 if one does not."""
    deadline = time.monotonic() + VERIFY_TIMEOUT
    for node in nodes:
        runtime = node["runtime"]
        if runtime.get("state") != "running":
            fail(f"{node['name']} is {runtime.get('state')} on {node.get('host')}, not running", 1)
        for port in node_ports(node):
            while True:
                ok, why = answers_as_itself(inst, node, port)
                if ok:
                    break
                # another node answering will not turn into this one: only silence is waited out
                if why != "no answer" or time.monotonic() > deadline:
                    fail(
                        f"{node['name']} ({runtime.get('name')} on {node.get('host')}) does not "
                        f"answer as itself on {node['address']}:{port}: {why}",
                        1,
                    )
                time.sleep(0.2)
        ports = ",".join(str(p) for p in node_ports(node))
        print(
            f"{node['name']}: {runtime.get('driver', 'agent')} node {runtime.get('name')} on "
            f"{node.get('host')} answers as itself on {node['address']}:{ports}"
        )
        role, settings = layout[node["name"]]
        print(f"configure {node['name']} as {role}: {json.dumps(settings, sort_keys=True)}")


def start_servers(inst, nodes, layout):
    """Start this script's own server for each node (nodes no agent runs); wait until each
    listens on every port, or stop them all and exit 1."""
    spawned = []
    for node in nodes:
        name = node["name"]
        config, pid_file, log = node_files(name)
        pid = read_pid(pid_file)
        if server_alive(pid, config):
            print(f"{name}: already running (pid {pid})")
            continue
        role, settings = layout[name]
        write_json(
            config,
            {
                "name": name,
                "address": node["address"],
                "ports": node_ports(node),
                "pid_file": pid_file,
                "document": node_document(inst, node, role, settings),
            },
        )
        os.makedirs(os.path.dirname(log), exist_ok=True)
        os.makedirs(os.path.dirname(pid_file), exist_ok=True)
        with open(log, "ab") as out:
            try:
                process = subprocess.Popen(
                    [sys.executable, "-I", os.path.abspath(__file__), "serve", config],
                    cwd=workdir(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as e:
                kill_servers()
                fail(f"cannot start the server of {name}: {e}", 1)
        with open(pid_file + ".tmp", "w", encoding="ascii") as f:
            f.write(f"{process.pid}\n")
        os.replace(pid_file + ".tmp", pid_file)
        spawned.append((node, process))
    # Ready: the server said so after binding every port (a squatter's port answers too).
    deadline = time.monotonic() + START_TIMEOUT + 0.1 * len(nodes)
    waiting = list(spawned)
    while waiting:
        for node, process in waiting:
            if process.poll() is not None:
                why = log_tail(node_files(node["name"])[2]) or f"exit code {process.returncode}"
                kill_servers()
                fail(f"the server of {node['name']} exited: {why}; every server stopped", 1)
        waiting = [(n, p) for n, p in waiting if not server_ready(n, p.pid)]
        if waiting and time.monotonic() > deadline:
            late = ", ".join(n["name"] for n, _p in waiting)
            kill_servers()
            fail(
                f"servers not listening after {START_TIMEOUT:g} s: {late}; every server stopped", 1
            )
        if waiting:
            time.sleep(0.05)
    for node in nodes:
        ports = ",".join(str(p) for p in node_ports(node))
        pid = read_pid(node_files(node["name"])[1])
        print(f"{node['name']}: serving its config on {node['address']}:{ports} (pid {pid})")


def start():
    inst = load_instance()
    owners = {}
    for node in inst["nodes"]:
        for port in node_ports(node):
            other = owners.setdefault((node["address"], port), node["name"])
            if other != node["name"]:
                fail(
                    f"{other} and {node['name']} would both listen on {node['address']}:{port}: "
                    "give every node an address of its own (a network in the template and "
                    "hosts attached to it, see examples/README.md)",
                    1,
                )
    summary, layout = plan(inst)
    agents = [n for n in inst["nodes"] if run_by_agent(n)]
    own = [n for n in inst["nodes"] if not run_by_agent(n)]
    verify_nodes(inst, agents, layout)
    start_servers(inst, own, layout)
    summary["nodes"] = {n["name"]: n.get("services") or [] for n in inst["nodes"]}
    summary["agent_nodes"] = [n["name"] for n in agents]
    write_json(os.path.join(workdir(), STATE), summary)
    print(summary["started"])
    first = inst["nodes"][0]
    print(f"try: curl http://{first['address']}:{node_ports(first)[0]}/")


def stop():
    try:
        with open(os.path.join(workdir(), STATE), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        summary = {}
    if not summary and not recorded_servers():
        print("nothing to stop: the cluster was not started")
        return
    for line in summary.get("teardown", []):
        print(line)
    roles = summary.get("nodes") or {}
    for name, _pid, _config in recorded_servers():
        print(f"stopping {'+'.join(roles.get(name) or [SERVICE])} on {name}")
    servers, left = kill_servers()
    if left:
        fail("could not stop: " + ", ".join(f"{n} (pid {p})" for n, p, _c in left), 1)
    try:
        os.remove(os.path.join(workdir(), STATE))
    except FileNotFoundError:
        pass
    if summary.get("agent_nodes"):
        names = ", ".join(summary["agent_nodes"])
        print(f"{names}: run by their hosts' agents; the platform stops them after this")
    print(f"stopped {len(servers)} node server(s)")
    if summary.get("stopped"):
        print(summary["stopped"])


def status():
    inst = load_instance()
    down = 0
    for node in inst["nodes"]:
        ports = ",".join(str(p) for p in node_ports(node))
        if run_by_agent(node):
            name = node["runtime"].get("name")
            checks = [answers_as_itself(inst, node, port) for port in node_ports(node)]
            why = "; ".join(w for ok, w in checks if not ok)
            if not why:
                where = f"{name} on {node.get('host')}"
                print(f"{node['name']}: running ({where}) on {node['address']}:{ports}")
            else:
                down += 1
                print(f"{node['name']}: not answering as itself ({name}): {why}")
            continue
        config, pid_file, _log = node_files(node["name"])
        pid = read_pid(pid_file)
        if server_alive(pid, config):
            print(f"{node['name']}: running (pid {pid}) on {node['address']}:{ports}")
        else:
            down += 1
            print(f"{node['name']}: not running")
    print("running" if not down else f"not running ({down} of {len(inst['nodes'])} nodes down)")
    sys.exit(3 if down else 0)


def changed_nodes():
    """The names of the nodes a resize adds or removes (PAAS_CHANGED_NODES_FILE)."""
    path = os.environ.get("PAAS_CHANGED_NODES_FILE")
    if not path:
        fail("PAAS_CHANGED_NODES_FILE is not set: scale-out and decommission come from a resize")
    try:
        with open(path, encoding="utf-8") as f:
            nodes = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read the changed nodes file {path}: {e}")
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        fail(f"invalid changed nodes file {path}: a list of nodes")
    return [str(n.get("name")) for n in nodes]


def save_layout(inst, agents):
    """Record the nodes the cluster has now in the work dir's state (what `stop` says)."""
    path = os.path.join(workdir(), STATE)
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        summary = {}
    summary["nodes"] = {n["name"]: n.get("services") or [] for n in inst["nodes"]}
    summary["agent_nodes"] = [n["name"] for n in agents]
    write_json(path, summary)


def scale_out():
    """Nodes joined the cluster (PAAS_INSTANCE_FILE is the new layout): configure them."""
    inst = load_instance()
    joining = set(changed_nodes())
    _summary, layout = plan(inst)
    new = [n for n in inst["nodes"] if n["name"] in joining]
    missing = joining - {n["name"] for n in new}
    if missing:
        fail(f"the joining nodes {', '.join(sorted(missing))} are not in the instance file")
    verify_nodes(inst, [n for n in new if run_by_agent(n)], layout)
    start_servers(inst, [n for n in new if not run_by_agent(n)], layout)
    save_layout(inst, [n for n in inst["nodes"] if run_by_agent(n)])
    print(f"{SERVICE}: {len(new)} node(s) joined: {', '.join(n['name'] for n in new)}")


def decommission():
    """Nodes are about to leave (PAAS_INSTANCE_FILE is the layout without them): move their
    work to the others, then stop the servers of this script's own among them."""
    inst = load_instance()
    leaving = changed_nodes()
    plan(inst)  # the layout without them: print it, and refuse one that cannot work
    stay = ", ".join(n["name"] for n in inst["nodes"])
    for name in leaving:
        print(f"decommissioning {name}: its data and work move to {stay}")
    _servers, left = kill_servers(set(leaving))
    if left:
        fail("could not stop: " + ", ".join(f"{n} (pid {p})" for n, p, _c in left), 1)
    save_layout(inst, [n for n in inst["nodes"] if run_by_agent(n)])
    print(f"{SERVICE}: {len(leaving)} node(s) decommissioned: {', '.join(leaving)}")


def serve(config_path):
    """The node's server: answer every connection with the node's JSON line."""
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    body = (json.dumps(config["document"], sort_keys=True) + "\n").encode()
    selector = selectors.DefaultSelector()
    for port in config["ports"]:
        family = socket.AF_INET6 if ":" in config["address"] else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((config["address"], port))
        except OSError as e:
            hint = ""
            if e.errno == errno.EADDRNOTAVAIL:
                hint = (
                    " (not an address of this machine: without host agents the orquestrator "
                    "serves the nodes itself, on addresses it has, such as a loopback network)"
                )
            print(
                f"cannot listen on {config['address']}:{port}: {e.strerror or e}{hint}",
                flush=True,
            )
            sys.exit(1)
        listener.listen(128)
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, None)
    ports = ",".join(str(p) for p in config["ports"])
    print(
        f"{config['name']} (pid {os.getpid()}) listening on {config['address']}:{ports}", flush=True
    )
    clients = {}  # socket -> [deadline, bytes received]
    began, seen, next_check = time.monotonic(), False, 0.0

    def close(conn):
        selector.unregister(conn)
        del clients[conn]
        conn.close()

    def answer(conn):
        data = clients[conn][1]
        selector.unregister(conn)
        del clients[conn]
        method = data.split(b" ", 1)[0]
        if method in HTTP_METHODS:
            head = (
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            payload = head if method == b"HEAD" else head + body
        else:
            payload = body
        try:
            conn.setblocking(True)
            conn.settimeout(2.0)
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()

    while True:
        now = time.monotonic()
        if now >= next_check:
            next_check = now + 1.0
            owner = read_pid(config["pid_file"])
            if owner == os.getpid():
                seen = True
            elif seen or now - began > 60:
                return  # stopped, or the work dir is gone: leave nothing behind
        timeout = min([next_check, *(c[0] for c in clients.values())]) - now
        for key, _events in selector.select(max(timeout, 0)):
            if key.data is None:
                try:
                    conn, _peer = key.fileobj.accept()
                except OSError:
                    continue
                if len(clients) >= 200:
                    conn.close()
                    continue
                conn.setblocking(False)
                clients[conn] = [time.monotonic() + 0.3, b""]
                selector.register(conn, selectors.EVENT_READ, "client")
                continue
            conn = key.fileobj
            try:
                chunk = conn.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                close(conn)  # the peer left (a health check): nothing to answer
                continue
            state = clients[conn]
            state[1] += chunk
            state[0] = max(state[0], time.monotonic() + 1.0)
            data = state[1]
            if data.split(b" ", 1)[0] in HTTP_METHODS:
                done = b"\r\n\r\n" in data or b"\n\n" in data
            else:
                done = b"\n" in data
            if done or len(data) > 16384:
                answer(conn)
        now = time.monotonic()
        for conn in [c for c, state in clients.items() if state[0] <= now]:
            answer(conn)


def main(argv):
    if len(argv) == 3 and argv[1] == "serve":
        serve(argv[2])
        return
    commands = {
        "start": start,
        "stop": stop,
        "status": status,
        "scale-out": scale_out,
        "decommission": decommission,
    }
    if len(argv) != 2 or argv[1] not in commands:
        fail(
            "usage: orquestrator.py start|stop|status|scale-out|decommission "
            f"(got: {' '.join(argv[1:]) or 'nothing'})"
        )
    commands[argv[1]]()


# ==== end of node servers ====

if __name__ == "__main__":
    main(sys.argv)
