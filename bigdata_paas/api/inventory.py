"""Hosts and networks (admins only)."""

from __future__ import annotations

from flask import jsonify, url_for
from flask_smorest import Blueprint

from bigdata_paas.api import schemas
from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import LOCATION, doc_body, json_body, responses, runtime
from bigdata_paas.operations import inventory as ops

blp = Blueprint("inventory", __name__, description="The physical inventory (admins)")

ADMIN_ERRORS = (401, 403)


@blp.route("/hosts", methods=["GET"])
@blp.doc(**responses((200, schemas.Hosts, "every host"), errors=ADMIN_ERRORS))
@admin_required
def list_hosts():
    """List hosts with their capacity, allocated and free resources."""
    with runtime().db.session() as session:
        return jsonify({"hosts": [h.to_dict() for h in ops.list_hosts(session)]})


@blp.route("/hosts", methods=["POST"])
@blp.doc(
    **doc_body(schemas.HostIn),
    **responses(
        (201, schemas.Host, "added"), errors=(400, 401, 403, 409, 415), headers={201: LOCATION}
    ),
)
@admin_required
def add_host():
    """Add a host; queued instances are tried again."""
    with runtime().db.session() as session:
        body = ops.add_host(session, json_body()).to_dict()
    return jsonify(body), 201, {"Location": url_for("inventory.host_detail", name=body["name"])}


@blp.route("/hosts/<name>", methods=["GET"])
@blp.doc(
    **responses((200, schemas.Host, "the host and the nodes on it"), errors=(*ADMIN_ERRORS, 404))
)
@admin_required
def host_detail(name: str):
    """Show a host: capacity, allocated, free, and which instance nodes are there."""
    with runtime().db.session() as session:
        host = ops.get_host(session, name)
        return jsonify({**host.to_dict(), "nodes": ops.host_nodes(session, host)})


@blp.route("/hosts/<name>", methods=["PATCH"])
@blp.doc(
    **doc_body(schemas.HostPatch),
    **responses((200, schemas.Host, "changed"), errors=(400, *ADMIN_ERRORS, 404, 415)),
)
@admin_required
def update_host(name: str):
    """Change a host's state (up, drain, down) or labels."""
    with runtime().db.session() as session:
        host, _opened = ops.update_host(session, ops.get_host(session, name), json_body())
        return jsonify(host.to_dict())


@blp.route("/hosts/<name>", methods=["DELETE"])
@blp.doc(**responses((204, None, "removed"), errors=(*ADMIN_ERRORS, 404, 409)))
@admin_required
def delete_host(name: str):
    """Remove a host that holds no node."""
    with runtime().db.session() as session:
        ops.delete_host(session, ops.get_host(session, name))
    return "", 204


@blp.route("/networks", methods=["GET"])
@blp.doc(**responses((200, schemas.Networks, "every address pool"), errors=ADMIN_ERRORS))
@admin_required
def list_networks():
    """List address pools with their usage."""
    with runtime().db.session() as session:
        return jsonify(
            {"networks": [ops.network_usage(session, n) for n in ops.list_networks(session)]}
        )


@blp.route("/networks", methods=["POST"])
@blp.doc(
    **doc_body(schemas.NetworkIn),
    **responses(
        (201, schemas.Network, "added"), errors=(400, 401, 403, 409, 415), headers={201: LOCATION}
    ),
)
@admin_required
def add_network():
    """Add an address pool."""
    with runtime().db.session() as session:
        network = ops.add_network(session, json_body())
        body = ops.network_usage(session, network)
    return jsonify(body), 201, {"Location": url_for("inventory.network_detail", name=body["name"])}


@blp.route("/networks/<name>", methods=["GET"])
@blp.doc(
    **responses((200, schemas.Network, "size, used, free and holders"), errors=(*ADMIN_ERRORS, 404))
)
@admin_required
def network_detail(name: str):
    """Show a pool: size, used, free, and who holds each used address."""
    with runtime().db.session() as session:
        return jsonify(ops.network_usage(session, ops.get_network(session, name)))


@blp.route("/networks/<name>", methods=["DELETE"])
@blp.doc(**responses((204, None, "removed"), errors=(*ADMIN_ERRORS, 404, 409)))
@admin_required
def delete_network(name: str):
    """Remove a pool nobody uses."""
    with runtime().db.session() as session:
        ops.delete_network(session, ops.get_network(session, name))
    return "", 204
