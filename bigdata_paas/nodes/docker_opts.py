"""The safe subset of ``docker_opts``, and the image allow-list.

The original system pasted a node's free ``docker_opts`` string into a ``docker run`` command
line. Here it never reaches a shell: it is split with :mod:`shlex` into tokens, and only the
options below are accepted; each becomes a field of :class:`NodeOptions` that the drivers apply
themselves. Everything else is refused with a :class:`NodeOptionError` naming the option.

Accepted (docs/nodes.md explains each):

====================================  =====================================================
``-e K=V``, ``--env K=V``, ``--env=K=V``  an environment variable of the node (``K`` not
                                          ``PAAS_*``, which the platform sets; ``-e K`` alone
                                          would copy the agent's variable, so it is refused)
``-w DIR``, ``--workdir DIR``             the working directory inside the container
``--entrypoint PROG``                     which program of the (allowed) image runs first
``-u UID[:GID]``, ``--user UID[:GID]``    a numeric, non-root user (and group) in the container
``--read-only``                           a read-only root filesystem (only takes rights away)
``--shm-size SIZE``                       the size of ``/dev/shm`` (counted in the memory limit)
====================================  =====================================================

``--entrypoint`` is accepted because it grants nothing: the container is the boundary, the
image is already allowed, and a node's ``command`` already chooses what runs in it. Options
that reach the host (devices, host paths, host namespaces, capabilities, published ports) or
that the platform sets itself (name, hostname, network, limits, labels) are refused.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bigdata_paas.nodes.errors import NodeOptionError

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
USER_RE = re.compile(r"(\d{1,10})(?::(\d{1,10}))?")
SIZE_RE = re.compile(r"([1-9]\d{0,12})([bkmgBKMG]?)")
# A container image reference: registry/path:tag or @digest; never starting with '-', which
# podman would read as an option.
IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}")
MAX_OPTS_LENGTH = 65536
MAX_ENV = 256

#: option -> the NodeOptions field it sets (every one of these takes a value)
VALUE_OPTIONS = {
    "-e": "env",
    "--env": "env",
    "-w": "workdir",
    "--workdir": "workdir",
    "--entrypoint": "entrypoint",
    "-u": "user",
    "--user": "user",
    "--shm-size": "shm_size",
}
FLAG_OPTIONS = {"--read-only": "read_only"}

_HOST_PATH = "mounts a host path; a node sees only its allocated disks"
_HOST_NS = "joins a namespace of the host"
#: why the notable refusals are refused (anything not accepted is refused anyway)
REFUSED = {
    "--privileged": "gives the node every capability and every host device",
    "--cap-add": "adds kernel capabilities",
    "--device": "gives the node a host device",
    "--device-cgroup-rule": "gives the node host devices",
    "--security-opt": "weakens the node's confinement (seccomp, AppArmor, SELinux)",
    "--userns": _HOST_NS,
    "--pid": _HOST_NS,
    "--ipc": _HOST_NS,
    "--uts": _HOST_NS,
    "--cgroupns": _HOST_NS,
    "--net": "the node's networks are the platform's: its interfaces are placed",
    "--network": "the node's networks are the platform's: its interfaces are placed",
    "--ip": "the node's addresses are placed by the platform",
    "--mac-address": "the node's interfaces are set by the platform",
    "-p": "publishes host ports; a node answers on its own address",
    "--publish": "publishes host ports; a node answers on its own address",
    "-P": "publishes host ports; a node answers on its own address",
    "--publish-all": "publishes host ports; a node answers on its own address",
    "-v": _HOST_PATH,
    "--volume": _HOST_PATH,
    "--mount": _HOST_PATH,
    "--volumes-from": _HOST_PATH,
    "--tmpfs": "mounts outside the platform's disks",
    "--env-file": "reads a file on the host",
    "--env-host": "copies the agent's whole environment into the node",
    "--label-file": "reads a file on the host",
    "-l": "labels are the platform's (they tie a container to its instance)",
    "--label": "labels are the platform's (they tie a container to its instance)",
    "--name": "the container's name is derived from the instance and the node",
    "-h": "the hostname is the node's name",
    "--hostname": "the hostname is the node's name",
    "-m": "the memory limit is the node's placed mem",
    "--memory": "the memory limit is the node's placed mem",
    "--memory-swap": "the memory limit is the node's placed mem",
    "-c": "cpu limits are the node's placed cpu",
    "--cpus": "cpu limits are the node's placed cpu",
    "--cpu-shares": "cpu limits are the node's placed cpu",
    "--cpuset-cpus": "cpu limits are the node's placed cpu",
    "--ulimit": "resource limits are the platform's",
    "--pids-limit": "resource limits are the platform's",
    "--oom-kill-disable": "lets the node escape its memory limit",
    "--cgroup-parent": "moves the node out of its cgroup",
    "--cgroups": "moves the node out of its cgroup",
    "--group-add": "adds groups to the node's user",
    "--pull": "images are never pulled on a node's host",
    "--rootfs": "runs a host directory as the node's root filesystem",
    "--runtime": "the runtime is the host's",
    "--sysctl": "changes kernel settings",
}


@dataclass(frozen=True)
class NodeOptions:
    """What a node's ``docker_opts`` asked for, once checked."""

    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    entrypoint: str | None = None
    user: str | None = None
    read_only: bool = False
    shm_size: str | None = None
    tokens: tuple[str, ...] = field(default=(), compare=False)

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


def _refuse(option: str, why: str | None = None) -> NodeOptionError:
    if why is None:
        why = REFUSED.get(option)
    if why is None:
        accepted = ", ".join([*VALUE_OPTIONS, *FLAG_OPTIONS])
        return NodeOptionError(
            option, f"docker_opts: option {option} is not allowed (allowed: {accepted})"
        )
    return NodeOptionError(option, f"docker_opts: option {option} is not allowed: it {why}")


def _split(text: str) -> list[str]:
    if not isinstance(text, str):
        raise NodeOptionError("docker_opts", "docker_opts must be a string")
    if len(text) > MAX_OPTS_LENGTH:
        raise NodeOptionError("docker_opts", f"docker_opts is longer than {MAX_OPTS_LENGTH}")
    if "\x00" in text:
        raise NodeOptionError("docker_opts", "docker_opts contains a NUL character")
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as exc:  # an unterminated quote
        raise NodeOptionError("docker_opts", f"docker_opts cannot be split: {exc}") from None


def _tokens(text: str) -> Iterable[tuple[str, str | None]]:
    """(option, value) pairs; the value is None for flags."""
    tokens = _split(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--" or not token.startswith("-") or token == "-":
            raise NodeOptionError(
                token,
                f"docker_opts: {token!r} is not an option: docker_opts holds options only "
                "(the image and the command are the node's docker_image and command)",
            )
        if token.startswith("--"):
            option, eq, attached = token.partition("=")
            value = attached if eq else None
        else:
            # -eK=V and -e=K=V (as Docker's flag parser reads them)
            option, attached = token[:2], token[2:]
            value = attached.removeprefix("=") if attached else None
        if option in FLAG_OPTIONS:
            yield option, value
            continue
        if option not in VALUE_OPTIONS:
            raise _refuse(option)
        if value is None:
            if i >= len(tokens):
                raise NodeOptionError(option, f"docker_opts: option {option} needs a value")
            value = tokens[i]
            i += 1
        yield option, value


def _path(option: str, value: str) -> str:
    path = value.rstrip("/") or "/"
    if not path.startswith("/") or posixpath.normpath(path) != path or "\n" in path:
        raise NodeOptionError(
            option, f"docker_opts: {option} must be a normalized absolute path, got {value!r}"
        )
    return path


def _env(option: str, value: str, env: dict[str, str]) -> None:
    name, eq, text = value.partition("=")
    if not eq:
        raise NodeOptionError(
            option,
            f"docker_opts: {option} {name} has no value: it would copy the agent's own "
            f"variable into the node; write {option} {name}=VALUE",
        )
    if not ENV_NAME_RE.fullmatch(name):
        raise NodeOptionError(option, f"docker_opts: {option}: invalid variable name {name!r}")
    if name.upper().startswith("PAAS_"):
        raise NodeOptionError(
            option, f"docker_opts: {option} {name}: PAAS_* variables are set by the platform"
        )
    env[name] = text
    if len(env) > MAX_ENV:
        raise NodeOptionError(option, f"docker_opts: more than {MAX_ENV} variables")


def parse_docker_opts(text: str | None) -> NodeOptions:
    """Parse a node's ``docker_opts`` into the safe subset; raise NodeOptionError otherwise."""
    if text is None or text == "":
        return NodeOptions()
    env: dict[str, str] = {}
    found: dict[str, object] = {}
    for option, value in _tokens(text):
        if option in FLAG_OPTIONS:
            if value not in (None, "true", "false"):
                raise NodeOptionError(option, f"docker_opts: {option} takes true or false")
            found[FLAG_OPTIONS[option]] = value != "false"
            continue
        assert value is not None
        target = VALUE_OPTIONS[option]
        if target == "env":
            _env(option, value, env)
        elif target == "workdir":
            found["workdir"] = _path(option, value)
        elif target == "entrypoint":
            if not value or value.startswith(("-", "[")) or "\n" in value:
                raise NodeOptionError(
                    option, f"docker_opts: {option} must name one program, got {value!r}"
                )
            found["entrypoint"] = value
        elif target == "user":
            match = USER_RE.fullmatch(value)
            if not match:
                raise NodeOptionError(
                    option,
                    f"docker_opts: {option} must be a numeric UID[:GID], got {value!r} "
                    "(a name may be root in the image)",
                )
            if int(match[1]) == 0 or (match[2] is not None and int(match[2]) == 0):
                raise NodeOptionError(option, f"docker_opts: {option} {value}: not as root")
            found["user"] = value
        elif target == "shm_size":
            match = SIZE_RE.fullmatch(value)
            if not match:
                raise NodeOptionError(
                    option, f"docker_opts: {option} must be a size like 64m, got {value!r}"
                )
            found["shm_size"] = match[1] + match[2].lower()
    return NodeOptions(env=tuple(env.items()), tokens=tuple(_split(text)), **found)  # type: ignore[arg-type]


def parse_image_allow(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``PAAS_IMAGE_ALLOW``: comma-separated prefixes; empty means any image."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(item.strip() for item in items if item.strip())


def image_allowed(image: str, allow: Sequence[str]) -> bool:
    """True if ``image`` is under one of the ``allow`` prefixes (any image if there are none).

    A prefix matches at a boundary: ``localhost/paas-node`` allows ``localhost/paas-node:1``,
    ``localhost/paas-node@sha256:...`` and ``localhost/paas-node/x``, never
    ``localhost/paas-node-evil``. A prefix that ends in ``/``, ``:`` or ``@`` matches as is.
    """
    if not allow:
        return True
    for prefix in allow:
        if image == prefix:
            return True
        if image.startswith(prefix) and (prefix[-1] in "/:@" or image[len(prefix)] in "/:@"):
            return True
    return False


def check_image(image: object, allow: str | Sequence[str] | None = None) -> str:
    """Check a node's ``docker_image`` is a valid reference under the allow-list; return it."""
    if not isinstance(image, str) or not IMAGE_RE.fullmatch(image) or ".." in image:
        raise NodeOptionError("docker_image", f"docker_image: invalid image reference {image!r}")
    prefixes = parse_image_allow(allow)
    if not image_allowed(image, prefixes):
        raise NodeOptionError(
            "docker_image",
            f"docker_image: {image} is not allowed (PAAS_IMAGE_ALLOW: {', '.join(prefixes)})",
        )
    return image


def parse_command(command: object) -> tuple[str, ...]:
    """A node's ``command``: a list of arguments, or a string split with shlex (no shell)."""
    if command is None or command == "" or command == []:
        return ()
    if isinstance(command, str):
        if "\x00" in command:
            raise NodeOptionError("command", "command contains a NUL character")
        try:
            args = shlex.split(command)
        except ValueError as exc:
            raise NodeOptionError("command", f"command cannot be split: {exc}") from None
    elif isinstance(command, list) and all(isinstance(a, str) for a in command):
        args = list(command)
    else:
        raise NodeOptionError("command", "command must be a string or a list of strings")
    if not args or not args[0] or any("\x00" in a for a in args) or len(args) > 4096:
        raise NodeOptionError("command", "command must name a program (at most 4096 arguments)")
    return tuple(args)


def node_problems(
    name: str, node: dict, image_allow: str | Sequence[str] | None = None
) -> list[NodeOptionError]:
    """Every refused runtime field of one rendered node (``docker_opts``, image, command)."""
    problems = []
    for key, check in (
        ("docker_opts", lambda v: parse_docker_opts(v)),
        ("docker_image", lambda v: check_image(v, image_allow)),
        ("command", parse_command),
    ):
        if node.get(key) in (None, ""):
            continue
        try:
            check(node[key])
        except NodeOptionError as exc:
            exc.field = f"nodes.{name}.{key}"
            problems.append(exc)
    return problems


def spec_problems(
    spec: dict, image_allow: str | Sequence[str] | None = None
) -> list[dict[str, str]]:
    """The refused runtime fields of a rendered spec, as ``{"field", "message"}`` problems.

    For template upload (after the test render) and for launch: an empty list means fine.
    """
    problems = []
    for name, node in (spec.get("nodes") or {}).items():
        if isinstance(node, dict):
            for exc in node_problems(name, node, image_allow):
                problems.append({"field": exc.field, "message": exc.message, "option": exc.option})
    return problems
