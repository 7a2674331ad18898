"""WSGI entry point (``gunicorn wsgi:app``; ``python wsgi.py`` runs the development server)."""

import gc

from bigdata_paas import create_app

app = create_app()

# As for the workers (bigdata_paas/worker.py): what is loaded by now (the app, its libraries,
# SQLAlchemy's and marshmallow's objects, some 150,000) lives as long as the process; out of
# the collector's sight, a full collection, which a few hundred launches set off, does not
# walk it (120 ms each time in-process; docs/benchmarks.md).
gc.freeze()

if __name__ == "__main__":
    rt = app.extensions["paas"]
    app.run(host=rt.config.HOST, port=rt.config.PORT)
