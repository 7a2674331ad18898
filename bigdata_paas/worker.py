"""The Celery app of the pipeline and orquestrator workers, beat and Flower, importable from an
installed package: ``celery -A bigdata_paas.worker:celery_app worker -Q pipeline``."""

from bigdata_paas import create_app
from bigdata_paas.messaging.app import use_broker_tmp

flask_app = create_app()
use_broker_tmp(flask_app.extensions["paas"].config)
celery_app = flask_app.extensions["celery"]
