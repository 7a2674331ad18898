"""Fixtures of the node runtime tests: real podman, the paas-node image, private subnets.

Podman tests skip when podman is missing or broken, and fail instead under
PAAS_REQUIRE_SERVICES=1. Every container and network a test makes carries this run's label
(``paas.test``) and its own (``paas.case``): each test removes its own, and the session removes
whatever is left with the run's label.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from collections.abc import Iterator

import pytest

from bigdata_paas.nodes.driver import podman_works
from bigdata_paas.nodes.image import ensure_image
from bigdata_paas.nodes.podman import PodmanDriver
from tests.conftest import REQUIRE_SERVICES
from tests.nodes.support import RUN, podman_subnets, remove_labelled, routed_locally


@pytest.fixture(scope="session")
def podman_session() -> Iterator[None]:
    if not podman_works():
        if REQUIRE_SERVICES:
            pytest.fail("PAAS_REQUIRE_SERVICES=1 but podman is missing or does not work")
        pytest.skip("needs podman (apt-get install podman runc)")
    yield
    remove_labelled(f"paas.test={RUN}")  # the safety net


@pytest.fixture(scope="session")
def node_image(podman_session) -> str:
    return ensure_image()


@pytest.fixture
def case() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def podman_driver(podman_session, data_root, case) -> Iterator[PodmanDriver]:
    driver = PodmanDriver(
        data_root / "podman-state",
        host="h1",
        labels={"paas.test": RUN, "paas.case": case},
        stop_grace=2,
    )
    yield driver
    remove_labelled(f"paas.case={case}")


@pytest.fixture
def subnet():
    """A factory of /24 subnets in 10.200-254.x.0 that nothing on this machine uses yet."""

    def make() -> ipaddress.IPv4Network:
        used = podman_subnets()
        for _ in range(100):
            net = ipaddress.ip_network(
                f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24"
            )
            # not a network of this machine yet: its addresses go out through a gateway
            if not any(net.overlaps(u) for u in used) and not routed_locally(str(net[1])):
                return net
        raise AssertionError("no free test subnet")

    return make
