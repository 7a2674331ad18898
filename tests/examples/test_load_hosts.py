"""``flask --app wsgi paas load-hosts FILE``: the demo inventory, a hosts list, bad files."""

from __future__ import annotations

import json

import pytest

from tests.conftest import register_example
from tests.examples.helpers import EXAMPLES, SERVICES

API = "/bigdata/api/v1"


def load(app, path) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["paas", "load-hosts", str(path)])
    return result.exit_code, result.output


def test_the_demo_inventory_loads_networks_then_hosts(app, client, admin):
    code, output = load(app, EXAMPLES / "inventory.json")
    assert code == 0, output
    path = EXAMPLES / "inventory.json"
    assert output.splitlines() == [
        "network demo: added (10.20.0.0/24, gateway 10.20.0.1)",
        *(
            f"host node0{n}: added (127.0.0.1, 16 cpu, 65536 MB, 6 disks, networks: demo)"
            for n in range(1, 5)
        ),
        f"{path}: 1 network(s) added, 0 skipped; 4 host(s) added, 0 skipped",
    ]
    hosts = client.get(f"{API}/hosts", headers=admin).get_json()["hosts"]
    assert [(h["name"], h["networks"]) for h in hosts] == [
        (f"node0{n}", ["demo"]) for n in range(1, 5)
    ]
    network = client.get(f"{API}/networks/demo", headers=admin).get_json()
    assert (network["cidr"], network["gateway"]) == ("10.20.0.0/24", "10.20.0.1")
    # the audit trail names the machine's command line, not the admin's token
    trail = client.get(f"{API}/audit?per_page=100", headers=admin).get_json()["items"]
    assert sorted((e["actor"], e["action"]) for e in trail) == [
        ("paas-server", "host.added")
    ] * 4 + [("paas-server", "network.added")]

    code, output = load(app, path)
    assert code == 0, output
    assert output.splitlines() == [
        "network demo: already exists, skipped",
        *(f"host node0{n}: already exists, skipped" for n in range(1, 5)),
        f"{path}: 0 network(s) added, 1 skipped; 0 host(s) added, 4 skipped",
    ]


def test_the_hosts_list_still_loads(app, client, admin):
    code, output = load(app, EXAMPLES / "hosts.json")
    assert code == 0, output
    assert [line.split(":")[0] for line in output.splitlines()[:4]] == [
        f"host node0{n}" for n in range(1, 5)
    ]
    assert "networks: none" in output
    assert len(client.get(f"{API}/hosts", headers=admin).get_json()["hosts"]) == 4


def test_the_inventory_file_matches_the_hosts_list():
    """inventory.json is hosts.json attached to the demo network."""
    inventory = json.loads((EXAMPLES / "inventory.json").read_text())
    hosts = json.loads((EXAMPLES / "hosts.json").read_text())
    assert [dict(h, networks=[]) for h in inventory["hosts"]] == hosts
    assert all(h["networks"] == ["demo"] for h in inventory["hosts"])
    assert inventory["networks"] == [
        {"name": "demo", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1"}
    ]


@pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=[s[0] for s in SERVICES])
def test_every_example_fits_the_demo_inventory(app, client, admin, name, version, launch):
    assert load(app, EXAMPLES / "inventory.json")[0] == 0
    register_example(client, admin, name, version)
    for options in ({}, launch):
        response = client.post(f"{API}/services/{name}/{version}/plan", json=options, headers=admin)
        body = response.get_json()
        assert response.status_code == 200 and body["fits"], body
        addresses = [p["addresses"]["eth0"] for p in body["placement"]]
        assert all(a.startswith("10.20.0.") for a in addresses), addresses
        assert len(set(addresses)) == len(addresses), body["placement"]


def test_an_existing_network_with_another_cidr_is_named(app, client, admin, tmp_path):
    network = {"name": "demo", "cidr": "10.9.0.0/24"}
    assert client.post(f"{API}/networks", json=network, headers=admin).status_code == 201
    code, output = load(app, EXAMPLES / "inventory.json")
    assert code == 0, output
    assert output.splitlines()[0] == (
        "network demo: already exists as 10.9.0.0/24, not 10.20.0.0/24, skipped"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "not JSON"),
        ('"hosts"', "expected a list of hosts or an object"),
        ('{"hosts": [], "extra": 1}', "unknown keys extra"),
        ('{"hosts": {}}', "hosts must be a list of JSON objects"),
        ('{"networks": [1]}', "networks must be a list of JSON objects"),
        ('[{"name": "a"}, {"name": "a"}]', "host names listed twice: a"),
    ],
)
def test_a_malformed_file_is_refused(app, tmp_path, content, message):
    path = tmp_path / "inventory.json"
    path.write_text(content)
    code, output = load(app, path)
    assert code != 0
    assert message in output


def test_an_invalid_host_loads_nothing_and_lists_every_problem(app, client, admin, tmp_path):
    inventory = json.loads((EXAMPLES / "inventory.json").read_text())
    inventory["hosts"][1]["cpu"] = 0
    inventory["hosts"][2]["networks"] = ["demo", "nope"]
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    code, output = load(app, path)
    assert code != 0
    assert "nothing loaded" in output
    assert "host node02: cpu: must be an integer >= 1" in output
    assert "host node03: unknown networks: nope" in output
    assert client.get(f"{API}/hosts", headers=admin).get_json()["hosts"] == []
    assert client.get(f"{API}/networks", headers=admin).get_json()["networks"] == []


def test_an_invalid_network_stops_before_the_hosts(app, client, admin, tmp_path):
    inventory = json.loads((EXAMPLES / "inventory.json").read_text())
    inventory["networks"][0]["cidr"] = "nonsense"
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    code, output = load(app, path)
    assert code != 0
    assert "network demo: cidr:" in output
    assert client.get(f"{API}/hosts", headers=admin).get_json()["hosts"] == []
