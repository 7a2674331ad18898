"""The console's admin pages: hosts (drain, undrain), networks, users, the queue.

A user who is not an admin finds none of them: each answers 404, as another user's instance
does, and the navigation does not link them.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, g, redirect, render_template, request, url_for
from marshmallow import ValidationError as SchemaError

from bigdata_paas.api import schemas
from bigdata_paas.api.common import runtime
from bigdata_paas.console import bp
from bigdata_paas.errors import PaasError
from bigdata_paas.operations import inventory, queue, users


def admin_page(view):
    """Only for admins; anyone else finds nothing here."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not g.user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper


@bp.route("/admin/hosts")
@admin_page
def hosts():
    """Every host: cpu, memory and disks used and free, state, the agent's last report."""
    return render_template("console/hosts.html", hosts=inventory.list_hosts(runtime()))


def _set_state(name: str, state: str):
    changes = schemas.HostPatch().load({"state": state})
    inventory.update_host(runtime(), name, changes, actor=g.user.name)
    return redirect(url_for("console.hosts"), 303)


@bp.route("/admin/hosts/<name>/drain", methods=["POST"])
@admin_page
def drain(name: str):
    """Place nothing new on the host; what runs there stays."""
    return _set_state(name, "drain")


@bp.route("/admin/hosts/<name>/undrain", methods=["POST"])
@admin_page
def undrain(name: str):
    """Open the host to placement again (queued instances are tried)."""
    return _set_state(name, "up")


@bp.route("/admin/networks")
@admin_page
def networks():
    """Every address pool with its addresses used and free."""
    return render_template("console/networks.html", networks=inventory.list_networks(runtime()))


def _users_page(*, created: dict | None = None, problems=(), form=None, status: int = 200):
    return (
        render_template(
            "console/users.html",
            users=users.list_users(runtime()),
            created=created,
            problems=list(problems),
            form=form or {},
        ),
        status,
    )


@bp.route("/admin/users")
@admin_page
def users_page():
    return _users_page()


@bp.route("/admin/users", methods=["POST"])
@admin_page
def create_user():
    """Create a user; the page shows its token this once (the answer is never cached)."""
    form = {"name": request.form.get("name", ""), "role": request.form.get("role", "user")}
    try:
        user = schemas.UserIn().load(form)
        created = users.create_user(runtime(), user["name"], user["role"], actor=g.user.name)
    except SchemaError as exc:
        problems = [f"{k}: {'; '.join(map(str, v))}" for k, v in exc.messages.items()]
        return _users_page(problems=problems, form=form, status=400)
    except PaasError as exc:
        return _users_page(problems=[exc.message], form=form, status=exc.status)
    return _users_page(created=created, status=201)


@bp.route("/admin/queue")
@admin_page
def waiting_queue():
    """The queued instances in the order they will be placed, each with why it waits."""
    return render_template("console/queue.html", waiting=queue.waiting(runtime()))
