"""``paas-server``: the operator commands of an installed platform (``paas-server setup``,
``paas-server load-hosts FILE`` ...), the same group as ``flask --app wsgi paas`` in a checkout,
without needing a ``wsgi`` module or a working directory."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from flask.cli import ScriptInfo

    from bigdata_paas import create_app
    from bigdata_paas.settings import ConfigError

    try:
        app = create_app()
    except ConfigError as exc:
        sys.exit(f"paas-server: {exc}")
    group = app.cli.commands["paas"]
    group.main(args=argv, prog_name="paas-server", obj=ScriptInfo(create_app=lambda: app))


if __name__ == "__main__":
    main()
