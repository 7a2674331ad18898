"""Entry point for the Celery command line in a checkout: ``celery -A workers.celery_app
worker`` (the Procfile's); the app itself is the package's, ``bigdata_paas.worker``."""

from bigdata_paas.worker import celery_app, flask_app

__all__ = ["celery_app", "flask_app"]
