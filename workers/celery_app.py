"""Entry point for the Celery command line: ``celery -A workers.celery_app worker``."""

from bigdata_paas import create_app
from bigdata_paas.messaging.app import use_broker_tmp

flask_app = create_app()
use_broker_tmp(flask_app.extensions["paas"].config)
celery_app = flask_app.extensions["celery"]
