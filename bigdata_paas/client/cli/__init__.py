"""The ``paas`` command: launch, follow and manage instances from a terminal or a script.

Exit codes (docs/cli.md): 0 done (the wanted status was reached), 1 the instance failed or
the API refused, 2 usage error, 124 ``--timeout`` passed, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys

import click

from bigdata_paas.client.api import (
    ApiError,
    ClientError,
    ConnectionFailed,
    InstanceFailed,
    WaitTimeout,
)

# the commands register themselves on the group as they are imported
from bigdata_paas.client.cli import admin, instances, services  # noqa: F401
from bigdata_paas.client.cli.base import (
    DURATION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    cli,
    split_service,
    typed,
)
from bigdata_paas.client.display import error

__all__ = ["DURATION", "cli", "main", "run", "split_service", "typed"]


def run(argv: list[str] | None = None) -> int:
    """Run the command; return its exit code."""
    try:
        # Without standalone mode click returns what ctx.exit(code) asked for (or the
        # command's own None), and leaves every exception to the handlers below.
        code = cli.main(args=argv, prog_name="paas", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # usage errors are 2, the rest 1
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("\ninterrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        return EXIT_INTERRUPTED
    except WaitTimeout as exc:
        error(f"timed out after {exc.timeout:g}s: {exc}")
        return EXIT_TIMEOUT
    except InstanceFailed as exc:
        error(str(exc))
        return EXIT_FAILED
    except ApiError as exc:
        problems = exc.problems
        if len(problems) < 2:
            error(exc.message)
        else:  # one a line
            error(f"{len(problems)} problems ({exc.status} {exc.code}):")
            for problem in problems:
                field = problem.get("field")
                text = f"{field}: {problem['message']}" if field else problem["message"]
                click.echo(f"  {text}", err=True)
        return EXIT_FAILED
    except ConnectionFailed as exc:
        error(str(exc))
        return EXIT_FAILED
    except ClientError as exc:
        error(str(exc))
        return EXIT_FAILED
    return code if isinstance(code, int) else EXIT_OK


def main() -> None:
    """The ``paas`` console script."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
