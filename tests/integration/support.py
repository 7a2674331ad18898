"""Shortcuts of the integration tests: API calls and the checks every scenario repeats."""

from __future__ import annotations

API = "/bigdata/api/v1"


def launch(client, headers, name: str, version: str, options: dict) -> dict:
    """POST a launch; assert 202 and return the instance."""
    response = client.post(f"{API}/services/{name}/{version}", json=options, headers=headers)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/instances/{body['id']}")
    return body


def events(client, headers, instance_id: str) -> list[dict]:
    response = client.get(f"{API}/instances/{instance_id}/events", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["events"]


def log_lines(client, headers, instance_id: str) -> list[dict]:
    response = client.get(f"{API}/instances/{instance_id}/logs", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["lines"]


def hosts(client, headers) -> list[dict]:
    response = client.get(f"{API}/hosts", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["hosts"]


def assert_nothing_allocated(client, headers) -> None:
    listed = hosts(client, headers)
    assert listed, "no hosts in the inventory"
    for host in listed:
        assert host["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}, host
        assert all(disk["free"] for disk in host["disks"]), host
