"""Hosts and networks (admins only)."""

from __future__ import annotations

from flask import url_for

from bigdata_paas.api import schemas
from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import LOCATION, Blueprint, caller, errors, runtime
from bigdata_paas.operations import inventory as ops

blp = Blueprint("inventory", __name__, description="The physical inventory (admins)")


@blp.route("/hosts", methods=["GET"])
@blp.doc(**errors(401, 403))
@admin_required
@blp.response(200, schemas.HostsOut, description="every host")
def list_hosts():
    """List hosts with their capacity, allocated and free resources."""
    return {"hosts": ops.list_hosts(runtime())}


@blp.route("/hosts", methods=["POST"])
@blp.doc(**errors(400, 401, 403, 409, 415))
@admin_required
@blp.arguments(schemas.HostIn)
@blp.response(201, schemas.HostOut, description="added", headers=LOCATION)
def add_host(host: dict):
    """Add a host; queued instances are tried again."""
    added = ops.add_host(runtime(), host, actor=caller().name)
    return added, {"Location": url_for("inventory.host_detail", name=added["name"])}


@blp.route("/hosts/<name>", methods=["GET"])
@blp.doc(**errors(401, 403, 404))
@admin_required
@blp.response(200, schemas.HostOut, description="the host and the nodes on it")
def host_detail(name: str):
    """Show a host: capacity, allocated, free, and which instance nodes are there."""
    return ops.describe_host(runtime(), name)


@blp.route("/hosts/<name>", methods=["PATCH"])
@blp.doc(**errors(400, 401, 403, 404, 415))
@admin_required
@blp.arguments(schemas.HostPatch)
@blp.response(200, schemas.HostOut, description="changed")
def update_host(changes: dict, name: str):
    """Change a host's state (up, drain, down) or labels."""
    return ops.update_host(runtime(), name, changes, actor=caller().name)


@blp.route("/hosts/<name>", methods=["DELETE"])
@blp.doc(**errors(401, 403, 404, 409))
@admin_required
@blp.response(204, description="removed")
def delete_host(name: str):
    """Remove a host that holds no node."""
    ops.delete_host(runtime(), name, actor=caller().name)


@blp.route("/networks", methods=["GET"])
@blp.doc(**errors(401, 403))
@admin_required
@blp.response(200, schemas.NetworksOut, description="every address pool")
def list_networks():
    """List address pools with their usage."""
    return {"networks": ops.list_networks(runtime())}


@blp.route("/networks", methods=["POST"])
@blp.doc(**errors(400, 401, 403, 409, 415))
@admin_required
@blp.arguments(schemas.NetworkIn)
@blp.response(201, schemas.NetworkOut, description="added", headers=LOCATION)
def add_network(network: dict):
    """Add an address pool; queued instances are tried again."""
    added = ops.add_network(runtime(), network, actor=caller().name)
    return added, {"Location": url_for("inventory.network_detail", name=added["name"])}


@blp.route("/networks/<name>", methods=["GET"])
@blp.doc(**errors(401, 403, 404))
@admin_required
@blp.response(200, schemas.NetworkOut, description="size, used, free and holders")
def network_detail(name: str):
    """Show a pool: size, used, free, and who holds each used address."""
    return ops.describe_network(runtime(), name)


@blp.route("/networks/<name>", methods=["DELETE"])
@blp.doc(**errors(401, 403, 404, 409))
@admin_required
@blp.response(204, description="removed")
def delete_network(name: str):
    """Remove a pool nobody uses."""
    ops.delete_network(runtime(), name, actor=caller().name)
