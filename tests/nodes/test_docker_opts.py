"""The docker_opts safe subset and the image allow-list, table-driven with hostile input."""

from __future__ import annotations

import pytest

from bigdata_paas.nodes import (
    NodeOptionError,
    NodeOptions,
    check_image,
    image_allowed,
    parse_command,
    parse_docker_opts,
    parse_image_allow,
    spec_problems,
)

ACCEPTED = [
    ("", NodeOptions()),
    (None, NodeOptions()),
    ("-e A=1", NodeOptions(env=(("A", "1"),))),
    (
        "--env A=1 --env=B=2 -eC=3 -e=D=4",
        NodeOptions(env=(("A", "1"), ("B", "2"), ("C", "3"), ("D", "4"))),
    ),
    ("-e A=1 -e A=2", NodeOptions(env=(("A", "2"),))),  # the last one wins, as in docker
    ("-e 'MSG=hello world; rm -rf /'", NodeOptions(env=(("MSG", "hello world; rm -rf /"),))),
    ("-e 'X=$(id)' -e Y=`id`", NodeOptions(env=(("X", "$(id)"), ("Y", "`id`")))),
    ("-e EMPTY=", NodeOptions(env=(("EMPTY", ""),))),
    ("-w /data/0", NodeOptions(workdir="/data/0")),
    ("--workdir=/opt/app/", NodeOptions(workdir="/opt/app")),
    ("--entrypoint /bin/sh", NodeOptions(entrypoint="/bin/sh")),
    ("-u 1000", NodeOptions(user="1000")),
    ("--user=1000:1000", NodeOptions(user="1000:1000")),
    ("--read-only", NodeOptions(read_only=True)),
    ("--read-only=false", NodeOptions(read_only=False)),
    ("--shm-size 64M", NodeOptions(shm_size="64m")),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted(text, expected):
    assert parse_docker_opts(text) == expected


REFUSED = [
    # (docker_opts, the option the error must name, a word of the reason)
    ("--privileged", "--privileged", "capability"),
    ("--privileged=true", "--privileged", "capability"),
    ("--net=host", "--net", "platform"),
    ("--net host", "--net", "platform"),
    ("--network host", "--network", "platform"),
    ("--network=container:other", "--network", "platform"),
    ("--pid=host", "--pid", "namespace"),
    ("--ipc host", "--ipc", "namespace"),
    ("--uts=host", "--uts", "namespace"),
    ("--userns=host", "--userns", "namespace"),
    ("--cgroupns=host", "--cgroupns", "namespace"),
    ("--cap-add ALL", "--cap-add", "capabilities"),
    ("--cap-add=SYS_ADMIN", "--cap-add", "capabilities"),
    ("--device /dev/sda", "--device", "device"),
    ("--device=/dev/kvm", "--device", "device"),
    ("--security-opt seccomp=unconfined", "--security-opt", "confinement"),
    ("--security-opt=apparmor=unconfined", "--security-opt", "confinement"),
    ("-v /:/host", "-v", "host path"),
    ("-v/etc:/etc", "-v", "host path"),
    ("--volume=/var/run/podman/podman.sock:/sock", "--volume", "host path"),
    ("--mount type=bind,src=/,dst=/host", "--mount", "host path"),
    ("--volumes-from other", "--volumes-from", "host path"),
    ("--tmpfs /run", "--tmpfs", "disks"),
    ("-p 80:80", "-p", "host ports"),
    ("-P", "-P", "host ports"),
    ("--env-file /etc/shadow", "--env-file", "file on the host"),
    ("--env-host", "--env-host", "environment"),
    ("-e SECRET", "-e", "copy the agent's own variable"),
    ("--env=PAAS_BROKER_URL", "--env", "copy the agent's own variable"),
    ("-e PAAS_NODE_NAME=evil", "-e", "set by the platform"),
    ("-e paas_x=1", "-e", "set by the platform"),
    ("-e 1BAD=x", "-e", "invalid variable name"),
    ("-e 'A B=x'", "-e", "invalid variable name"),
    ("--user root", "--user", "numeric"),
    ("-u 0", "-u", "not as root"),
    ("-u 0:0", "-u", "not as root"),
    ("--user 1000:0", "--user", "not as root"),
    ("--user=nobody", "--user", "numeric"),
    ("--group-add 0", "--group-add", "groups"),
    ("--name evil", "--name", "derived"),
    ("-h evil", "-h", "hostname"),
    ("--hostname=evil", "--hostname", "hostname"),
    ("--label paas.instance=other", "--label", "labels"),
    ("-l paas.node=x", "-l", "labels"),
    ("-m 100g", "-m", "placed mem"),
    ("--memory=100g", "--memory", "placed mem"),
    ("--cpus 64", "--cpus", "placed cpu"),
    ("--ulimit nofile=1048576", "--ulimit", "limits"),
    ("--pids-limit -1", "--pids-limit", "limits"),
    ("--oom-kill-disable", "--oom-kill-disable", "memory limit"),
    ("--cgroup-parent /", "--cgroup-parent", "cgroup"),
    ("--pull always", "--pull", "pulled"),
    ("--rootfs /", "--rootfs", "root filesystem"),
    ("--runtime crun", "--runtime", "runtime"),
    ("--sysctl net.ipv4.ip_forward=1", "--sysctl", "kernel"),
    ("-it", "-i", "not allowed"),
    ("--rm", "--rm", "not allowed"),
    ("--detach", "--detach", "not allowed"),
    ("--init", "--init", "not allowed"),
    ("--gpus all", "--gpus", "not allowed"),
    # positionals: an image or a command smuggled in as an option string
    ("busybox", "busybox", "not an option"),
    ("-e A=1 alpine sh", "alpine", "not an option"),
    ("-- --privileged", "--", "not an option"),
    ("-", "-", "not an option"),
    # broken input
    ("-e", "-e", "needs a value"),
    ("--workdir", "--workdir", "needs a value"),
    ("-e 'A=1", "docker_opts", "cannot be split"),
    ("-e A=\x00", "docker_opts", "NUL"),
    ("-w relative/dir", "-w", "absolute"),
    ("-w /a/../../etc", "-w", "normalized"),
    ("--entrypoint=-x", "--entrypoint", "one program"),
    ('--entrypoint \'["/bin/sh","-c"]\'', "--entrypoint", "one program"),
    ("--shm-size 64q", "--shm-size", "size"),
    ("--shm-size=-1", "--shm-size", "size"),
    ("--read-only=maybe", "--read-only", "true or false"),
    # a refused option hidden after accepted ones
    ("-e A=1 -w /x --privileged", "--privileged", "capability"),
    ("-e A=1\n--cap-add=ALL", "--cap-add", "capabilities"),
]


@pytest.mark.parametrize(("text", "option", "reason"), REFUSED)
def test_refused(text, option, reason):
    with pytest.raises(NodeOptionError) as caught:
        parse_docker_opts(text)
    assert isinstance(caught.value, ValueError)
    assert caught.value.option == option
    assert reason in caught.value.message
    if option.startswith("-") and option != "-":
        assert option in caught.value.message


def test_refused_lists_what_is_allowed():
    with pytest.raises(NodeOptionError) as caught:
        parse_docker_opts("--restart always")
    assert "allowed: -e, --env, -w, --workdir" in caught.value.message


def test_too_long():
    with pytest.raises(NodeOptionError, match="longer"):
        parse_docker_opts("-e A=" + "x" * 70000)


def test_not_a_string():
    with pytest.raises(NodeOptionError, match="string"):
        parse_docker_opts(["--privileged"])  # type: ignore[arg-type]


ALLOW = [
    # (image, PAAS_IMAGE_ALLOW, allowed?)
    ("localhost/paas-node:1", "", True),
    ("anything/at:all", None, True),
    ("localhost/paas-node:1", "localhost/paas-node", True),
    ("localhost/paas-node", "localhost/paas-node", True),
    ("localhost/paas-node@sha256:abcd", "localhost/paas-node", True),
    ("localhost/paas-node/extra:2", "localhost/paas-node", True),
    ("localhost/paas-node-evil:1", "localhost/paas-node", False),
    ("localhost/paas-nodeevil", "localhost/paas-node", False),
    ("docker.io/library/busybox:1", "localhost/, registry.example.org/team/", False),
    ("registry.example.org/team/app:3", "localhost/, registry.example.org/team/", True),
    ("registry.example.org/teamevil/app", "localhost/,registry.example.org/team/", False),
    ("localhost/x", " localhost/ , ", True),
    ("busybox", "docker.io/library/", False),  # short names never match a qualified prefix
]


@pytest.mark.parametrize(("image", "allow", "allowed"), ALLOW)
def test_image_allow(image, allow, allowed):
    assert image_allowed(image, parse_image_allow(allow)) is allowed
    if allowed:
        assert check_image(image, allow) == image
    else:
        with pytest.raises(NodeOptionError) as caught:
            check_image(image, allow)
        assert caught.value.option == "docker_image"
        assert "not allowed" in caught.value.message


@pytest.mark.parametrize(
    "image",
    ["", "--privileged", "-v", "a b", "a;b", "a\nb", "../../etc", "x" * 300, "$(id)", None, 5],
)
def test_invalid_image_references(image):
    with pytest.raises(NodeOptionError) as caught:
        check_image(image)
    assert caught.value.option == "docker_image"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("serve --port 80", ("serve", "--port", "80")),
        ("sh -c 'echo $HOME; id'", ("sh", "-c", "echo $HOME; id")),
        (["/bin/echo", "a b", "$(id)"], ("/bin/echo", "a b", "$(id)")),
        (None, ()),
        ("", ()),
    ],
)
def test_command(command, expected):
    assert parse_command(command) == expected


@pytest.mark.parametrize("command", ["'unterminated", ["a", 1], {"a": 1}, [""], "a\x00b", 5])
def test_bad_command(command):
    with pytest.raises(NodeOptionError) as caught:
        parse_command(command)
    assert caught.value.option == "command"


def test_spec_problems_name_every_node_and_field():
    spec = {
        "nodes": {
            "ok": {
                "cpu": 1,
                "mem": 64,
                "docker_image": "localhost/paas-node:1",
                "docker_opts": "-e A=1",
            },
            "bad0": {"cpu": 1, "mem": 64, "docker_opts": "--privileged"},
            "bad1": {"cpu": 1, "mem": 64, "docker_image": "docker.io/evil:1", "command": ["x", 2]},
        }
    }
    problems = spec_problems(spec, "localhost/")
    assert [(p["field"], p["option"]) for p in problems] == [
        ("nodes.bad0.docker_opts", "--privileged"),
        ("nodes.bad1.docker_image", "docker_image"),
        ("nodes.bad1.command", "command"),
    ]
    assert all(p["message"] for p in problems)
    assert spec_problems({"nodes": {"ok": spec["nodes"]["ok"]}}, "localhost/") == []
