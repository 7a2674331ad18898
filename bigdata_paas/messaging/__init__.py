"""The Celery app, the queues and publishing (after commit): what operations send through."""
