"""Node addresses for the process driver: a node process binds its placed address itself, so
the address must be one of this host's.

A loopback address (``127.0.0.0/8``, ``::1``) always is, and needs nothing. Any other address
(a private pool such as the demo's ``10.20.0.0/16``) is added, as root, to a device of its
platform network, ``paas-<network>``: a ``dummy`` device, or where the kernel has no dummy
driver, a bridge without ports (both only hold addresses; nothing is forwarded). Each address
is added as a /32 (/128), so no route of the network's is taken over (a podman bridge of the
same network keeps its own), and removed when its node stops; the device goes when it holds
no address any more. Without root, a node whose address is not already on this host cannot
start, and the error says what to do instead.

Every call is an ``ip`` argument list (iproute2), never a shell.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bigdata_paas.nodes.errors import NodeStartError
from bigdata_paas.nodes.spec import check_name

#: the kernel's limit on an interface name (IFNAMSIZ - 1)
IFNAME_MAX = 15
DEVICE_PREFIX = "paas-"
TIMEOUT = 30.0


def device_name(network: str) -> str:
    """The device that holds the process nodes' addresses of platform network ``network``."""
    check_name(network, "network")
    name = DEVICE_PREFIX + network
    if len(name) > IFNAME_MAX:  # a long network name: a digest of it, always the same
        name = DEVICE_PREFIX + hashlib.sha256(network.encode()).hexdigest()[:10]
    return name


def _ip(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip") or "/sbin/ip"
    try:
        done = subprocess.run(
            [ip, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise NodeStartError(f"cannot run ip {args[0]}: {exc}", reason=str(exc)) from None
    if check and done.returncode != 0:
        raise NodeStartError(
            f"ip {' '.join(args)} failed: {done.stderr.strip()}", reason=done.stderr.strip()
        )
    return done


def _host_prefix(address: str) -> str:
    parsed = ipaddress.ip_address(address)
    return f"{parsed}/{parsed.max_prefixlen}"


def is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def is_local(address: str) -> bool:
    """The address is one of this host's (the kernel routes it to itself)."""
    done = _ip("route", "get", address)
    return done.returncode == 0 and done.stdout.startswith("local ")


def device_addresses(device: str) -> list[str]:
    """The addresses on ``device`` (empty when it does not exist)."""
    done = _ip("-o", "addr", "show", "dev", device)
    if done.returncode != 0:
        return []
    found = []
    for line in done.stdout.splitlines():
        words = line.split()
        for family in ("inet", "inet6"):
            if family in words:
                address = words[words.index(family) + 1].split("/")[0]
                if not ipaddress.ip_address(address).is_link_local:
                    found.append(address)
    return found


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One change of the address devices at a time on this machine (agents of several hosts
    on one machine share the devices)."""
    folder = Path("/run/lock") if os.path.isdir("/run/lock") else Path(tempfile.gettempdir())
    with open(folder / "paas-node-addresses.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _make_device(device: str, network: str) -> None:
    if _ip("link", "show", "dev", device).returncode != 0:
        made = _ip("link", "add", device, "type", "dummy")
        if made.returncode != 0:  # no dummy driver in this kernel: a bridge without ports
            made = _ip("link", "add", device, "type", "bridge")
        if made.returncode != 0 and _ip("link", "show", "dev", device).returncode != 0:
            raise NodeStartError(
                f"cannot make the device {device} for the addresses of network {network}: "
                f"{made.stderr.strip()}",
                reason=made.stderr.strip(),
            )
        _ip("link", "set", "dev", device, "alias", f"paas network {network}")
    _ip("link", "set", "dev", device, "up", check=True)


def attach(network: str, address: str) -> bool:
    """Make ``address`` one of this host's for a node of ``network``; True if it was added
    here (and is to be removed with :func:`detach`), False if it needed nothing.

    Raises NodeStartError when the address is not this host's and this process is not root.
    """
    if is_loopback(address):
        return False
    device = device_name(network)
    if address in device_addresses(device):
        return True  # ours from before (an agent that crashed): still to be removed
    if is_local(address):
        return False  # the host's own (an operator's): never touched
    if os.geteuid() != 0:
        raise NodeStartError(
            f"the address {address} of network {network} is not on this host, and only root "
            f"can add it (the process driver puts node addresses on the device {device}): run "
            "the agent as root, use the podman driver (PAAS_NODE_DRIVER=podman), or give the "
            "network a loopback range (127.x.y.0/24), which any process may bind",
            reason="address not local",
        )
    with _locked():
        _make_device(device, network)
        # nodad: an IPv6 address is bindable at once, not "tentative" for a second
        nodad = ["nodad"] if ipaddress.ip_address(address).version == 6 else []
        done = _ip("addr", "add", _host_prefix(address), "dev", device, *nodad)
        if done.returncode != 0 and address not in device_addresses(device):
            raise NodeStartError(
                f"cannot add {address} to {device}: {done.stderr.strip()}",
                reason=done.stderr.strip(),
            )
    return True


def detach(network: str, address: str) -> None:
    """Remove an address :func:`attach` added; the device goes once it holds none."""
    device = device_name(network)
    with _locked():
        if address in device_addresses(device):
            _ip("addr", "del", _host_prefix(address), "dev", device)
        if not device_addresses(device) and _ip("link", "show", "dev", device).returncode == 0:
            _ip("link", "del", "dev", device)
