"""The launch pipeline: Celery app, task names, routing and publishing."""
