"""The web app of an installed platform: ``gunicorn -c gunicorn.py bigdata_paas.wsgi:app``
(a checkout's ``wsgi.py`` is the same app for ``flask --app wsgi``)."""

from bigdata_paas import create_app

app = create_app()
