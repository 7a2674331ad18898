"""The console's pages for every user, through the Flask client: the catalog, the launch form
(built from the options schema, Plan, errors next to their field), instances and their detail,
destroy and retry, and the streams the pages follow."""

from __future__ import annotations

import re

from bigdata_paas.operations import lifecycle
from bigdata_paas.operations.instances import list_instances
from bigdata_paas.operations.users import the_admin
from tests.conftest import ADMIN_TOKEN, bearer, load_example_hosts, register_example
from tests.console.support import (
    HOSTILE_CHOICE,
    HOSTILE_DEFAULT,
    HOSTILE_DESCRIPTION,
    HOSTILE_HELP,
    Console,
    register_hostile,
    token_of,
)

ADMIN = bearer(ADMIN_TOKEN)


def launch(console: Console, options: dict | None = None, action: str = "launch", **extra):
    data = {f"opt:{k}": v for k, v in (options or {}).items()}
    form = console.page("/console/services/gluster/3.7.11")
    defaults = dict(re.findall(r'name="(opt:[^"]+)" value="([^"]*)"', form))
    defaults.pop("opt:disk.type", None)  # a select: sent as the browser sends it
    data = {**defaults, "opt:disk.type": "hdd", **data, "action": action, **extra}
    return console.post("/console/services/gluster/3.7.11", data)


def test_the_catalog_says_which_versions_can_launch_and_escapes_descriptions(app, admin_console):
    client = app.test_client()
    register_example(client, ADMIN, "gluster", "3.7.11")
    register_hostile(client, ADMIN)
    client.post("/bigdata/api/v1/services", json={"name": "half", "version": "1"}, headers=ADMIN)
    page = admin_console.page("/console/services")
    assert 'href="/console/services/gluster/3.7.11">Launch</a>' in page
    assert "GlusterFS parallel filesystem cluster" in page
    assert "missing template, options, orquestrator" in page
    assert HOSTILE_DESCRIPTION not in page
    assert "&lt;script&gt;alert(&#39;description&#39;)&lt;/script&gt;" in page


def test_the_launch_form_is_made_from_the_options_schema(app, admin_console):
    register_example(app.test_client(), ADMIN, "gluster", "3.7.11")
    page = admin_console.page("/console/services/gluster/3.7.11")
    required, _, folded = page.partition("<details")
    # required first, each with a label, its type's input, its limits, default and help
    assert '<label for="opt-size">size</label>' in required
    assert re.search(
        r'type="number" id="opt-size" name="opt:size" value="2"\s+step="1" min="1"', required
    )
    assert 'aria-describedby="opt-size-help"' in required
    assert '<p class="help" id="opt-size-help">Number of gluster server nodes</p>' in required
    assert "opt:cpu" not in required
    # optional and advanced are folded (closed <details>), advanced last
    assert "<summary>More options</summary>" in folded and "<summary>Advanced</summary>" in folded
    assert folded.index("opt:cpu") < folded.index("Advanced") < folded.index("opt:gluster.image")
    assert '<option value="hdd" selected>hdd</option><option value="ssd">ssd</option>' in folded
    assert 'id="opt-gluster-image" name="opt:gluster.image" value="localhost/paas-node:1"' in folded
    assert "<details open" not in page


def test_hostile_option_values_and_help_are_escaped_in_the_form(app, admin_console):
    register_hostile(app.test_client(), ADMIN)
    page = admin_console.page("/console/services/evil/1.0")
    for raw in (HOSTILE_DEFAULT, HOSTILE_HELP, HOSTILE_CHOICE, HOSTILE_DESCRIPTION, "<script>al"):
        assert raw not in page
    assert 'value="&#34;&gt;&lt;script&gt;alert(&#39;default&#39;)&lt;/script&gt;"' in page
    assert "&lt;img src=x onerror=alert(&#39;help&#39;)&gt;" in page
    assert 'type="checkbox" id="opt-debug" name="opt:debug" value="true"' in page
    assert re.search(r'id="opt-ratio" name="opt:ratio" value="0.5"\s+step="any"', page)
    # and a launch with the hostile value shows it escaped on the instance page
    response = admin_console.post(
        "/console/services/evil/1.0",
        {
            "opt:size": "1",
            "opt:label": "<i>x</i>",
            "opt:flavour": "plain",
            "opt:ratio": "0.5",
            "action": "launch",
        },
    )
    assert response.status_code == 303, response.data
    page = admin_console.page(response.headers["Location"])
    assert "<i>x</i>" not in page and "&lt;i&gt;x&lt;/i&gt;" in page


def test_plan_shows_where_the_nodes_would_go_or_why_not(app, admin_console):
    client = app.test_client()
    register_example(client, ADMIN, "gluster", "3.7.11")
    load_example_hosts(client, ADMIN)
    response = launch(admin_console, {"size": "3"}, action="plan")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "It fits now (binpack)" in page
    assert len(re.findall(r"<tr><td>gluster\d</td><td>node0\d</td>", page)) == 3
    assert 'value="3"' in page  # the form keeps what was typed
    response = launch(admin_console, {"size": "5", "cpu": "16"}, action="plan")
    page = response.get_data(as_text=True)
    assert "It cannot be placed now; a launch would wait in the queue" in page
    assert list_instances(app.extensions["paas"], the_admin(app.extensions["paas"]))["total"] == 0


def test_launch_errors_show_next_to_their_field_and_launch_nothing(app, admin_console):
    register_example(app.test_client(), ADMIN, "gluster", "3.7.11")
    rt = app.extensions["paas"]
    response = launch(admin_console, {"size": "two", "mem": "1.5"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    size = page.split('data-option="size"')[1].split('<div class="field')[0]
    assert 'value="two"' in size and "must be a whole number" in size
    assert "<details open><summary>More options" in page  # an error in a folded group opens it
    response = launch(admin_console, {"size": "100"})
    assert response.status_code == 400
    size = response.get_data(as_text=True).split('data-option="size"')[1].split("</div>")[0]
    assert re.search(r'class="error field-error" role="alert">[^<]*64', size), size
    assert list_instances(rt, the_admin(rt))["total"] == 0


def test_launch_goes_to_the_instance_and_a_resent_form_launches_once(app, admin_console):
    register_example(app.test_client(), ADMIN, "gluster", "3.7.11")
    rt = app.extensions["paas"]
    response = launch(admin_console, {"size": "3"}, launch_key="a" * 32)
    assert response.status_code == 303, response.data
    instance_id = response.headers["Location"].rsplit("/", 1)[1]
    again = launch(admin_console, {"size": "3"}, launch_key="a" * 32)
    assert again.headers["Location"] == response.headers["Location"]
    listed = list_instances(rt, the_admin(rt))
    assert listed["total"] == 1
    assert listed["items"][0]["options"] == {"size": 3}  # only what differs from the defaults
    page = admin_console.page(f"/console/instances/{instance_id}")
    assert 'id="instance-status">pending</span>' in page
    assert "step launch: accepted; pipeline enqueued" in page
    assert f'data-stream="/console/instances/{instance_id}/events/stream"' in page


def test_instances_are_filtered_by_the_query_string(app, admin_console, make_user):
    register_example(app.test_client(), ADMIN, "gluster", "3.7.11")
    bob = Console(app)
    bob.sign_in(token_of(make_user("bob")))
    assert launch(bob).status_code == 303
    assert launch(admin_console).status_code == 303
    page = admin_console.page("/console/instances?status=pending&service=gluster&user=bob")
    assert page.count("data-instance=") == 1 and "<td>bob</td>" in page
    assert '<option value="pending" selected>pending</option>' in page
    assert 'id="f-user" name="user" value="bob"' in page
    assert admin_console.page("/console/instances?status=running").count("data-instance=") == 0
    assert admin_console.page("/console/instances").count("data-instance=") == 2
    first = admin_console.page("/console/instances?per_page=1")
    assert first.count("data-instance=") == 1 and "2 in all; page 1" in first
    assert 'href="/console/instances?per_page=1&amp;page=2" id="next-page"' in first
    last = admin_console.page("/console/instances?per_page=1&page=2")
    assert last.count("data-instance=") == 1 and 'id="next-page"' not in last
    bad = admin_console.page("/console/instances?status=%3Cb%3E", status=400)
    assert "status: must be one of" in bad and "<b>" not in bad
    # a user sees only theirs, and cannot filter by user
    assert bob.page("/console/instances").count("data-instance=") == 1
    assert 'name="user"' not in bob.page("/console/instances")
    bob.page("/console/instances?user=admin", status=400)


def test_another_users_instance_is_not_found_anywhere(app, admin_console, user_console):
    register_example(app.test_client(), ADMIN, "gluster", "3.7.11")
    instance_id = launch(admin_console).headers["Location"].rsplit("/", 1)[1]
    base = f"/console/instances/{instance_id}"
    for path in (base, f"{base}/live", f"{base}/events/stream", f"{base}/logs/stream"):
        assert user_console.get(path).status_code == 404, path
    for action in ("destroy", "retry"):
        assert user_console.post(f"{base}/{action}").status_code == 404
    assert user_console.page("/console/instances").count("data-instance=") == 0
    assert admin_console.page(base).count("pending") >= 1


def test_destroy_and_retry_need_the_csrf_token_and_say_why_they_cannot(app, admin_console):
    register_example(app.test_client(), ADMIN, "gluster", "3.7.11")
    rt = app.extensions["paas"]
    instance_id = launch(admin_console).headers["Location"].rsplit("/", 1)[1]
    base = f"/console/instances/{instance_id}"
    page = admin_console.page(base)
    assert f'action="{base}/destroy" data-confirm="Destroy gluster-' in page
    assert admin_console.post(f"{base}/destroy", csrf=False).status_code == 400
    assert list_instances(rt, the_admin(rt))["items"][0]["status"] == "pending"
    refused = admin_console.post(f"{base}/retry")
    assert refused.status_code == 409
    assert "only a failed one retries" in refused.get_data(as_text=True)
    done = admin_console.post(f"{base}/destroy")
    assert done.status_code == 303 and done.headers["Location"] == base
    assert list_instances(rt, the_admin(rt))["items"][0]["status"] == "destroying"
    live = admin_console.page(f"{base}/live")
    assert 'id="instance-status">destroying</span>' in live
    assert "step destroy: destroy requested (was pending)" in live


def test_a_failed_instance_says_why_and_retries(app, admin_console):
    client = app.test_client()
    register_example(client, ADMIN, "gluster", "3.7.11")
    load_example_hosts(client, ADMIN)
    rt = app.extensions["paas"]
    instance_id = launch(admin_console, {"size": "1", "cpu": "64"}).headers["Location"]
    instance_id = instance_id.rsplit("/", 1)[1]
    # 64 cpu on hosts of 16: the submit step finds it can never fit
    assert lifecycle.STEP_RUNNERS["prepare"](rt, instance_id) == "prepared"
    assert lifecycle.STEP_RUNNERS["submit"](rt, instance_id) == "failed"
    page = admin_console.page(f"/console/instances/{instance_id}")
    assert 'id="instance-why">Failed at submit:' in page
    assert 'id="retry"' in page
    assert admin_console.post(f"/console/instances/{instance_id}/retry").status_code == 303
    assert list_instances(rt, the_admin(rt))["items"][0]["status"] == "prepared"


def read_stream(response, until: str, limit: int = 50) -> str:
    seen = ""
    for chunk, _ in zip(response.response, range(limit), strict=False):
        seen += chunk.decode() if isinstance(chunk, bytes) else chunk
        if until in seen:
            break
    response.close()
    return seen


def test_the_pages_streams_carry_events_for_the_session(app, admin_console):
    register_example(app.test_client(), ADMIN, "gluster", "3.7.11")
    instance_id = launch(admin_console).headers["Location"].rsplit("/", 1)[1]
    response = admin_console.get(
        f"/console/instances/{instance_id}/events/stream?after=0", buffered=False
    )
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    seen = read_stream(response, "event: pending")
    assert seen.startswith("retry: ") and '"message":"accepted; pipeline enqueued"' in seen
    response = admin_console.get("/console/events/stream?after=0", buffered=False)
    assert f'"instance_id":"{instance_id}"' in read_stream(response, instance_id)
    assert (
        admin_console.get(f"/console/instances/{instance_id}/events/stream?after=x").status_code
        == 400
    )
