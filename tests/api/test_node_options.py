"""Node runtime fields the platform refuses (docker_opts outside the safe subset, an image
PAAS_IMAGE_ALLOW does not allow) are a 422 naming the field and the option, at template
upload, options upload, plan and launch; a refusal changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.api.support import API, CheckedClient, add_service, error_of, instance_total
from tests.conftest import ADMIN_TOKEN, base_env, bearer, load_example_hosts, make_app

#: one node whose image and docker_opts are options, so a launch can set them
TEMPLATE = """{"nodes": {"box0": {"cpu": 1, "mem": 128, "disks": {}, "networks": {},
  "docker_image": {{ opts['image']|tojson }}, "docker_opts": {{ opts['docker_opts']|tojson }},
  "check_ports": [8080]}}, "services": {}}
"""
OPTIONS = {
    "required": {},
    "optional": {"image": "localhost/paas-node:1", "docker_opts": "-e ROLE=box"},
    "descriptions": {"image": "node image", "docker_opts": "runtime options"},
}
ALLOW = "localhost/paas-node"
#: docker_opts -> the option the answer must name
HOSTILE = {
    "--privileged": "--privileged",
    "--net=host": "--net",
    "--network host": "--network",
    "-v /:/host": "-v",
    "--volume=/etc:/etc": "--volume",
    "--cap-add SYS_ADMIN": "--cap-add",
    "--device /dev/sda": "--device",
    "--pid=host": "--pid",
    "-e ROLE=box --security-opt seccomp=unconfined": "--security-opt",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """An app whose node images must be under localhost/paas-node, with the service ``box``."""
    env = base_env(tmp_path_factory.mktemp("nodeopts") / "var", PAAS_IMAGE_ALLOW=ALLOW)
    app = make_app(env)
    app.test_client_class = CheckedClient
    add_service(
        app.test_client(),
        bearer(ADMIN_TOKEN),
        "box",
        "1",
        template=TEMPLATE,
        options=OPTIONS,
        orquestrator="print(1)\n",
    )
    load_example_hosts(app.test_client(), bearer(ADMIN_TOKEN))
    yield app
    app.extensions["paas"].db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def refused(response, field: str, option: str) -> dict:
    """The 422 names the node field and the option; returns the problem."""
    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "invalid_node_options"
    problems = error["details"]["problems"]
    assert [(p["field"], p["option"]) for p in problems] == [(field, option)], problems
    assert field in error["message"] and option in error["message"], error
    return problems[0]


def put(client, admin, part: str, body) -> object:
    data = json.dumps(body) if isinstance(body, dict) else body
    return client.put(
        f"{API}/services/box/1/{part}", data=data, content_type="application/json", headers=admin
    )


@pytest.mark.parametrize(("opts", "option"), HOSTILE.items(), ids=list(HOSTILE))
def test_a_template_with_hostile_docker_opts_is_refused_at_upload(client, admin, opts, option):
    hostile = TEMPLATE.replace("{{ opts['docker_opts']|tojson }}", json.dumps(opts))
    problem = refused(put(client, admin, "template", hostile), "nodes.box0.docker_opts", option)
    assert "not allowed" in problem["message"]
    stored = client.get(f"{API}/services/box/1/template", headers=admin)
    assert stored.get_data(as_text=True) == TEMPLATE  # the old one stays


def test_a_template_with_a_disallowed_image_is_refused_at_upload(client, admin):
    other = TEMPLATE.replace(
        "{{ opts['image']|tojson }}", json.dumps("docker.io/library/busybox:1")
    )
    problem = refused(
        put(client, admin, "template", other), "nodes.box0.docker_image", "docker_image"
    )
    assert "docker.io/library/busybox:1 is not allowed" in problem["message"]
    assert ALLOW in problem["message"]
    stored = client.get(f"{API}/services/box/1/template", headers=admin)
    assert stored.get_data(as_text=True) == TEMPLATE


@pytest.mark.parametrize(
    ("key", "value", "field", "option"),
    [
        ("docker_opts", "--privileged", "nodes.box0.docker_opts", "--privileged"),
        ("image", "evil.example/paas-node:1", "nodes.box0.docker_image", "docker_image"),
        ("image", "localhost/paas-node-evil:1", "nodes.box0.docker_image", "docker_image"),
    ],
)
def test_options_whose_defaults_make_refused_nodes_are_refused(
    client, admin, key, value, field, option
):
    doc = {**OPTIONS, "optional": {**OPTIONS["optional"], key: value}}
    refused(put(client, admin, "options", doc), field, option)
    assert (
        client.get(f"{API}/services/box/1/options", headers=admin).get_json()["optional"]
        == (OPTIONS["optional"])
    )


@pytest.mark.parametrize(("opts", "option"), HOSTILE.items(), ids=list(HOSTILE))
def test_a_launch_with_hostile_docker_opts_is_refused_and_creates_nothing(
    client, admin, make_user, opts, option
):
    user = make_user()
    response = client.post(f"{API}/services/box/1", json={"docker_opts": opts}, headers=user)
    refused(response, "nodes.box0.docker_opts", option)
    assert instance_total(client, user) == 0


def test_a_launch_with_a_disallowed_image_is_refused_and_creates_nothing(client, admin, make_user):
    user = make_user()
    before = client.get(f"{API}/hosts", headers=admin).get_json()
    response = client.post(
        f"{API}/services/box/1", json={"image": "quay.io/evil/miner:latest"}, headers=user
    )
    problem = refused(response, "nodes.box0.docker_image", "docker_image")
    assert "quay.io/evil/miner:latest" in problem["message"]
    assert instance_total(client, user) == 0
    assert client.get(f"{API}/hosts", headers=admin).get_json() == before


@pytest.mark.parametrize(
    ("options", "field", "option"),
    [
        ({"docker_opts": "--cap-add=NET_ADMIN"}, "nodes.box0.docker_opts", "--cap-add"),
        ({"docker_opts": "-v /var/run/docker.sock:/s"}, "nodes.box0.docker_opts", "-v"),
        ({"image": "docker.io/library/alpine"}, "nodes.box0.docker_image", "docker_image"),
    ],
)
def test_a_plan_with_refused_node_fields_is_422(client, admin, make_user, options, field, option):
    user = make_user()
    response = client.post(f"{API}/services/box/1/plan", json=options, headers=user)
    refused(response, field, option)
    assert instance_total(client, user) == 0


def test_the_safe_subset_and_allowed_images_plan_and_launch(client, admin, make_user):
    user = make_user()
    options = {"docker_opts": "-e A=1 --env=B=2 -w /srv --user 1000:1000 --read-only"}
    plan = client.post(f"{API}/services/box/1/plan", json=options, headers=user)
    assert plan.status_code == 200 and plan.get_json()["fits"] is True, plan.get_json()
    response = client.post(f"{API}/services/box/1", json=options, headers=user)
    assert response.status_code == 202, response.get_json()
    assert instance_total(client, user) == 1
