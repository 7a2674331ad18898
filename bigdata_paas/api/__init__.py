"""HTTP only: one blueprint per resource under /bigdata/api/v1, auth, the error envelope."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from bigdata_paas.api import (
    audit,
    docs,
    health,
    instances,
    inventory,
    metrics,
    schemas,
    services,
    streams,
    users,
)
from bigdata_paas.api.auth import init_auth
from bigdata_paas.api.common import refuse_nul_in_url
from bigdata_paas.api.errors import init_errors
from bigdata_paas.api.requests import init_request_ids

PREFIX = "/bigdata/api/v1"


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE="bigdata-paas",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI's files from the app itself (api/docs.py), never a CDN; no validator
        # badge either (Swagger UI would send the document to validator.swagger.io)
        OPENAPI_SWAGGER_UI_URL=f"{PREFIX}{docs.ASSETS}",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "info": {
                "description": "Launch big-data clusters from a service catalog. "
                "Every route but /health, /livez and /readyz needs `Authorization: Bearer`."
            },
            "servers": [{"url": "/"}],
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    api = Api(app)
    # Every route documents its own error statuses with the one envelope (common.errors):
    # no catch-all `default` answer in flask-smorest's error shape, which this app never sends.
    api.DEFAULT_ERROR_RESPONSE_NAME = None
    api.spec.components.schema("ErrorEnvelope", schema=schemas.ErrorEnvelope)
    for blueprint in (health.blp, services.blp, instances.blp, inventory.blp, users.blp, audit.blp):
        api.register_blueprint(blueprint, url_prefix=PREFIX)
    api.register_blueprint(streams.blp, url_prefix=PREFIX)
    api.register_blueprint(metrics.blp, url_prefix=PREFIX)
    app.register_blueprint(docs.blp, url_prefix=PREFIX)  # not part of the API's document
    init_errors(app)
    init_auth(app)
    init_request_ids(app)
    app.before_request(refuse_nul_in_url)  # after the token check: anonymous still gets 401
    return api
