"""Celery tasks: thin, named, taking ids; they call operations (never the other way round)."""
