"""The podman command line, run with argument lists only, and the container networks.

Podman reads its settings from ``CONTAINERS_CONF`` when set. On machines like the development
one (cgroup v1/hybrid, no systemd, low hard limits on open files) podman's defaults fail, so
podman is pointed at the package's ``nodes/containers.conf`` when the operator has not set
``CONTAINERS_CONF`` and :func:`needs_containers_conf` finds one of those conditions.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import resource
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bigdata_paas.nodes.errors import NodeNetworkError, NodeStartError
from bigdata_paas.nodes.spec import network_name

SHIPPED_CONF = Path(__file__).resolve().parent / "containers.conf"
#: podman's own default for nofile and nproc (rootful), which runc must be allowed to set
PODMAN_DEFAULT_LIMIT = 1048576
#: variables podman itself may need; nothing else of the agent's environment reaches it
PODMAN_ENV_KEYS = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "DBUS_SESSION_BUS_ADDRESS",
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_REGISTRIES_CONF",
    "REGISTRY_AUTH_FILE",
)
TIMEOUT = 120.0


@functools.cache
def needs_containers_conf() -> tuple[str, ...]:
    """Why podman's defaults would fail on this machine (empty if they would not)."""
    reasons = []
    if os.path.isdir("/sys/fs/cgroup/unified") or not os.path.exists(
        "/sys/fs/cgroup/cgroup.controllers"
    ):
        reasons.append("cgroup v1 or hybrid (crun: 'cgroups in hybrid mode not supported')")
    if not os.path.isdir("/run/systemd/system"):
        reasons.append("no systemd (the systemd cgroup manager cannot work)")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if nofile != resource.RLIM_INFINITY and nofile < PODMAN_DEFAULT_LIMIT:
        reasons.append(
            f"hard nofile limit {nofile} < {PODMAN_DEFAULT_LIMIT} ('error setting rlimit')"
        )
    return tuple(reasons)


def podman_env(containers_conf: str | Path | None = None) -> dict[str, str]:
    """The environment podman runs with: a few of ours, and CONTAINERS_CONF if needed."""
    env = {k: v for k, v in os.environ.items() if k in PODMAN_ENV_KEYS}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if containers_conf is not None:
        env["CONTAINERS_CONF"] = str(containers_conf)
    elif "CONTAINERS_CONF" not in env and SHIPPED_CONF.exists() and needs_containers_conf():
        env["CONTAINERS_CONF"] = str(SHIPPED_CONF)
    return env


def tail(text: str, lines: int = 10) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


class Podman:
    """The podman CLI with a clean environment, and the networks made from platform networks.

    ``labels`` go on every network (and, in the driver, every container) made through it.
    ``scope`` names the deployment in its networks' names (``paas-<scope>-<network>``) when
    several share this podman.
    """

    def __init__(
        self,
        *,
        containers_conf: str | Path | None = None,
        labels: Mapping[str, str] | None = None,
        podman: str = "podman",
        scope: str = "",
    ) -> None:
        self.env = podman_env(containers_conf)
        self.labels = dict(labels or {})
        self.podman = podman
        self.scope = scope
        network_name("probe", scope)  # a bad scope fails here, not at the first start
        #: platform networks checked or made through this object (a start checks each once)
        self.networks_made: set[str] = set()

    def run(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``podman *args``, never through a shell; raises NodeStartError on a timeout."""
        try:
            return subprocess.run(
                [self.podman, *args],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise NodeStartError(
                f"podman {args[0]} did not answer within {timeout:g} s", reason="timeout"
            ) from None
        except OSError as exc:
            raise NodeStartError(f"cannot run podman: {exc}", reason=str(exc)) from None

    def container(self, name: str) -> dict[str, Any] | None:
        done = self.run("container", "inspect", "--format", "json", name)
        if done.returncode != 0:
            return None
        data = json.loads(done.stdout or "[]")
        return data[0] if data else None

    # -- networks ---------------------------------------------------------------------------

    def network(self, podman_name: str) -> dict[str, Any] | None:
        done = self.run("network", "inspect", podman_name)
        if done.returncode != 0:
            return None
        data = json.loads(done.stdout or "[]")
        return data[0] if data else None

    @staticmethod
    def _matches(found: dict[str, Any], cidr: str, gateway: str | None) -> str | None:
        """Why an existing network does not fit the platform's (None if it does)."""
        net = ipaddress.ip_network(cidr, strict=False)
        subnets = found.get("subnets") or []
        if not any(ipaddress.ip_network(s["subnet"], strict=False) == net for s in subnets):
            have = ", ".join(s.get("subnet", "?") for s in subnets) or "none"
            return f"its subnet is {have}, not {net}"
        if gateway and not any(s.get("gateway") == gateway for s in subnets):
            return f"its gateway is not {gateway}"
        return None

    def ensure_network(
        self, name: str, cidr: str, gateway: str | None = None, bridge: str | None = None
    ) -> str:
        """The podman network ``paas-[<scope>-]<name>`` for platform network ``name``; made if
        missing.

        Refuses (NodeNetworkError) when a network of that name has another subnet, and a
        loopback, link-local or multicast subnet, which a bridge cannot carry. Podman 4.3
        chooses the bridge device itself (``podmanN``); ``bridge`` is not used.
        """
        podman_name = network_name(name, self.scope)
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise NodeNetworkError(f"network {name}: invalid cidr {cidr!r}: {exc}") from None
        if net.is_loopback or net.is_link_local or net.is_multicast:
            raise NodeNetworkError(
                f"network {name}: {net} cannot be a container bridge (loopback, link-local or "
                "multicast); give the platform network a private range for container nodes"
            )
        for attempt in (1, 2):
            found = self.network(podman_name)
            if found is not None:
                why = self._matches(found, str(net), gateway)
                if why:
                    raise NodeNetworkError(
                        f"podman network {podman_name} exists but {why}", reason=why
                    )
                self.networks_made.add(name)
                return podman_name
            args = ["network", "create", "--subnet", str(net), "--disable-dns"]
            if gateway:
                args += ["--gateway", gateway]
            for key, value in sorted({**self.labels, "paas.network": name}.items()):
                args += ["--label", f"{key}={value}"]
            args.append(podman_name)
            done = self.run(*args)
            if done.returncode == 0:
                self.networks_made.add(name)
                return podman_name
            if attempt == 2:
                raise NodeNetworkError(
                    f"cannot create podman network {podman_name}: {tail(done.stderr)}",
                    reason=done.stderr.strip(),
                )
            # another start made it meanwhile: look again
        raise AssertionError("unreachable")

    def remove_network(self, name: str) -> bool:
        """Remove ``paas-<name>``; False if it was not there. Fails while a node uses it."""
        podman_name = network_name(name, self.scope)
        self.networks_made.discard(name)
        if self.network(podman_name) is None:
            return False
        done = self.run("network", "rm", podman_name)
        if done.returncode != 0 and self.network(podman_name) is not None:
            raise NodeNetworkError(
                f"cannot remove podman network {podman_name}: {tail(done.stderr)}",
                reason=done.stderr.strip(),
            )
        return True
