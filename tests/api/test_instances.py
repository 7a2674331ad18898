"""Instances: listing with pagination and filters, visibility, events, logs, destroy."""

from __future__ import annotations

import pytest

from bigdata_paas.models import LogLine
from tests.api.support import API, error_of, launch, problem_fields, set_status

INSTANCES = f"{API}/instances"


@pytest.fixture(scope="module")
def world(shared_app, shared_client, shared_user, admin):
    """alice: two gluster (one failed) and one cdh; bob: one gluster; admin: none."""
    users = {"alice": shared_user("alice"), "bob": shared_user("bob"), "admin": admin}
    ids = {
        "alice-gluster-1": launch(shared_client, users["alice"], "gluster", "3.7.11")["id"],
        "alice-cdh": launch(shared_client, users["alice"], "cdh", "5.7.2")["id"],
        "alice-gluster-2": launch(shared_client, users["alice"], "gluster", "3.7.11")["id"],
        "bob-gluster": launch(shared_client, users["bob"], "gluster", "3.7.11")["id"],
    }
    set_status(shared_app, ids["alice-gluster-2"], "failed")
    return {"client": shared_client, "users": users, "ids": ids}


@pytest.fixture(scope="module")
def admin():
    from tests.conftest import ADMIN_TOKEN, bearer

    return bearer(ADMIN_TOKEN)


def listing(world, who: str, query: str = "") -> dict:
    response = world["client"].get(f"{INSTANCES}?{query}", headers=world["users"][who])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# --------------------------------------------------------------------------- listing


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("alice", {"alice-gluster-1", "alice-gluster-2", "alice-cdh"}),
        ("bob", {"bob-gluster"}),
        ("admin", {"alice-gluster-1", "alice-gluster-2", "alice-cdh", "bob-gluster"}),
    ],
)
def test_users_see_only_their_own_instances_and_admins_all(world, who, expected):
    page = listing(world, who)
    assert page["total"] == len(expected)
    assert {item["id"] for item in page["items"]} == {world["ids"][key] for key in expected}
    if who != "admin":
        assert {item["user"] for item in page["items"]} == {who}


@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("alice", "service=gluster", {"alice-gluster-1", "alice-gluster-2"}),
        ("alice", "service=cdh", {"alice-cdh"}),
        ("alice", "version=5.7.2", {"alice-cdh"}),
        ("alice", "version=3.7.11&status=pending", {"alice-gluster-1"}),
        ("alice", "status=failed", {"alice-gluster-2"}),
        ("alice", "status=running", set()),
        ("alice", "service=nope", set()),
        ("bob", "service=cdh", set()),
        ("bob", "status=failed", set()),
        ("admin", "service=gluster", {"alice-gluster-1", "alice-gluster-2", "bob-gluster"}),
        ("admin", "service=gluster&status=pending", {"alice-gluster-1", "bob-gluster"}),
        ("admin", "user=alice", {"alice-gluster-1", "alice-gluster-2", "alice-cdh"}),
        ("admin", "user=bob", {"bob-gluster"}),
        ("admin", "user=alice&service=gluster", {"alice-gluster-1", "alice-gluster-2"}),
        ("admin", "user=admin", set()),
        ("admin", "user=nobody", set()),
    ],
)
def test_filters(world, who, query, expected):
    page = listing(world, who, query)
    assert page["total"] == len(expected)
    assert {item["id"] for item in page["items"]} == {world["ids"][key] for key in expected}


def test_a_user_cannot_filter_by_user(world):
    for query in ("user=bob", "user=alice"):
        response = world["client"].get(f"{INSTANCES}?{query}", headers=world["users"]["alice"])
        assert response.status_code == 400
        assert problem_fields(response) == {"user"}


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("page=0", {"page"}),
        ("page=-1", {"page"}),
        ("page=x", {"page"}),
        ("page=1.5", {"page"}),
        ("page=", {"page"}),
        ("page=%C2%B2", {"page"}),  # superscript two: a digit to str.isdigit, not to int()
        ("page=" + "9" * 5000, {"page"}),
        ("page=1000001", {"page"}),
        ("per_page=0", {"per_page"}),
        ("per_page=501", {"per_page"}),
        ("per_page=abc", {"per_page"}),
        ("per_page=" + "9" * 30, {"per_page"}),
        ("status=zzz", {"status"}),
        ("status=PENDING", {"status"}),
        ("page=0&per_page=0&status=zzz", {"page", "per_page", "status"}),
    ],
)
def test_bad_listing_parameters_are_400(world, query, fields):
    response = world["client"].get(f"{INSTANCES}?{query}", headers=world["users"]["admin"])
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"
    assert problem_fields(response) == fields


def test_pagination_newest_first_without_overlap(world):
    pages = [listing(world, "admin", f"per_page=3&page={n}") for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [3, 1, 0]
    assert all(p["total"] == 4 and p["per_page"] == 3 for p in pages)
    assert [p["has_more"] for p in pages] == [True, False, False]
    assert [p["page"] for p in pages] == [1, 2, 3]
    items = [item for p in pages for item in p["items"]]
    assert {item["id"] for item in items} == set(world["ids"].values())
    created = [item["created_at"] for item in items]
    assert created == sorted(created, reverse=True)
    assert items[0]["id"] == world["ids"]["bob-gluster"]  # launched last


def test_total_is_counted_up_to_a_limit(world, monkeypatch):
    """Beyond COUNT_LIMIT matches a list says null instead of counting them all; has_more
    still says whether a next page has items."""
    from bigdata_paas.operations import instances

    monkeypatch.setattr(instances, "COUNT_LIMIT", 3)
    first, last = (listing(world, "admin", f"per_page=2&page={n}") for n in (1, 2))
    assert (first["total"], first["has_more"], len(first["items"])) == (None, True, 2)
    assert (last["total"], last["has_more"], len(last["items"])) == (None, False, 2)
    monkeypatch.setattr(instances, "COUNT_LIMIT", 4)
    assert listing(world, "admin", "per_page=2")["total"] == 4
    mine = listing(world, "alice", "per_page=1")
    assert (mine["total"], mine["has_more"]) == (3, True)


def test_default_page_size(world):
    page = listing(world, "admin")
    assert (page["page"], page["per_page"]) == (1, 50)


# --------------------------------------------------------------------------- one instance


@pytest.mark.parametrize("suffix", ["", "/events", "/logs"])
def test_the_owner_and_admins_can_read_an_instance(world, suffix):
    instance_id = world["ids"]["alice-cdh"]
    for who in ("alice", "admin"):
        response = world["client"].get(
            f"{INSTANCES}/{instance_id}{suffix}", headers=world["users"][who]
        )
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("GET", "/events"), ("GET", "/logs"), ("DELETE", "")]
)
def test_another_users_instance_is_404_not_403(world, method, suffix):
    instance_id = world["ids"]["alice-gluster-1"]
    client = world["client"]
    response = client.open(
        f"{INSTANCES}/{instance_id}{suffix}", method=method, headers=world["users"]["bob"]
    )
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    unknown = client.open(
        f"{INSTANCES}/{'0' * 32}{suffix}", method=method, headers=world["users"]["bob"]
    )
    assert unknown.status_code == 404
    assert (
        error_of(unknown)["message"].replace("0" * 32, instance_id) == error_of(response)["message"]
    )
    still = client.get(f"{INSTANCES}/{instance_id}", headers=world["users"]["alice"])
    assert still.get_json()["status"] == "pending"


def test_detail_shows_options_and_no_nodes_yet(world):
    response = world["client"].get(
        f"{INSTANCES}/{world['ids']['alice-cdh']}", headers=world["users"]["alice"]
    )
    body = response.get_json()
    assert body["status"] == "pending"
    assert body["options"] == {}
    assert body["merged_options"] is None
    assert body["nodes"] == []
    assert "error" not in body


def test_a_failed_instance_shows_its_error(world):
    response = world["client"].get(
        f"{INSTANCES}/{world['ids']['alice-gluster-2']}", headers=world["users"]["alice"]
    )
    body = response.get_json()
    assert body["status"] == "failed"
    assert set(body["error"]) == {"step", "reason"}


def test_events_start_with_the_launch_event(world):
    response = world["client"].get(
        f"{INSTANCES}/{world['ids']['alice-cdh']}/events", headers=world["users"]["alice"]
    )
    events = response.get_json()["events"]
    assert len(events) == 1
    assert events[0]["step"] == "launch"
    assert events[0]["status"] == "pending"
    assert events[0]["message"]
    assert events[0]["at"].endswith("Z")


def test_logs_of_a_pending_instance_are_empty(world):
    url = f"{INSTANCES}/{world['ids']['alice-cdh']}/logs"
    client, alice = world["client"], world["users"]["alice"]
    assert client.get(url, headers=alice).get_json() == {"lines": [], "last": 0}
    assert client.get(f"{url}?after=0", headers=alice).get_json() == {"lines": [], "last": 0}
    assert client.get(f"{url}?after=7", headers=alice).get_json() == {"lines": [], "last": 7}


@pytest.mark.parametrize(
    "after",
    ["abc", "-1", "1.5", "", "%C2%B2", "9" * 30, "9" * 5000],
    ids=["abc", "negative", "float", "empty", "superscript", "huge", "too-many-digits"],
)
def test_bad_logs_after_is_400(world, after):
    url = f"{INSTANCES}/{world['ids']['alice-cdh']}/logs?after={after}"
    response = world["client"].get(url, headers=world["users"]["alice"])
    assert response.status_code == 400
    assert problem_fields(response) == {"after"}


def test_logs_follow_with_after(app, client, admin):
    from tests.conftest import register_example

    register_example(client, admin, "gluster", "3.7.11")
    instance_id = launch(client, admin, "gluster", "3.7.11")["id"]
    with app.extensions["paas"].db.session() as session:
        session.add_all(
            LogLine(instance_id=instance_id, command="start", stream="stdout", line=f"line {i}")
            for i in range(3)
        )
        session.commit()
    url = f"{INSTANCES}/{instance_id}/logs"
    everything = client.get(url, headers=admin).get_json()
    assert [line["line"] for line in everything["lines"]] == ["line 0", "line 1", "line 2"]
    ids = [line["id"] for line in everything["lines"]]
    assert everything["last"] == ids[-1]
    assert {line["command"] for line in everything["lines"]} == {"start"}
    rest = client.get(f"{url}?after={ids[0]}", headers=admin).get_json()
    assert [line["id"] for line in rest["lines"]] == ids[1:]
    assert rest["last"] == ids[-1]
    assert client.get(f"{url}?after={ids[-1]}", headers=admin).get_json() == {
        "lines": [],
        "last": ids[-1],
    }


# --------------------------------------------------------------------------- destroy


def test_delete_is_202_destroying_and_a_second_delete_is_harmless(client, admin, make_user):
    from tests.conftest import register_example

    register_example(client, admin, "gluster", "3.7.11")
    user = make_user()
    instance_id = launch(client, user, "gluster", "3.7.11")["id"]
    url = f"{INSTANCES}/{instance_id}"

    first = client.delete(url, headers=user)
    assert first.status_code == 202
    assert first.get_json()["id"] == instance_id
    assert first.get_json()["status"] == "destroying"
    assert client.get(url, headers=user).get_json()["status"] == "destroying"
    events = client.get(f"{url}/events", headers=user).get_json()["events"]
    assert [(e["step"], e["status"]) for e in events] == [
        ("launch", "pending"),
        ("destroy", "destroying"),
    ]

    # the code answers a repeated DELETE with 202 and the unchanged instance
    second = client.delete(url, headers=user)
    assert second.status_code == 202
    assert second.get_json()["status"] == "destroying"
    assert client.get(f"{url}/events", headers=user).get_json()["events"] == events
