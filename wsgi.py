"""WSGI entry point (``gunicorn wsgi:app``; ``python wsgi.py`` runs the development server)."""

from bigdata_paas import create_app

app = create_app()

if __name__ == "__main__":
    rt = app.extensions["paas"]
    app.run(host=rt.config.HOST, port=rt.config.PORT)
