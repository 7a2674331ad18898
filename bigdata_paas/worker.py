"""The Celery app of the pipeline and orquestrator workers, beat and Flower, importable from an
installed package: ``celery -A bigdata_paas.worker:celery_app worker -Q pipeline``."""

import gc

from bigdata_paas import create_app
from bigdata_paas.messaging.app import use_broker_tmp

flask_app = create_app()
use_broker_tmp(flask_app.extensions["paas"].config)
celery_app = flask_app.extensions["celery"]

# What is loaded by now (the app, SQLAlchemy's and Celery's modules and caches) lives as long
# as the process: out of the collector's sight, a full collection in a step does not walk it.
gc.freeze()
