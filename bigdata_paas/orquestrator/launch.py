"""Start an orquestrator script: limits, then the unprivileged user, then the script itself.

The worker runs this file as ``<python> -I -S -u launch.py CPU MEMORY FSIZE NPROC UID GID
SCRIPT COMMAND`` in a child it spawns without a ``preexec_fn``, so the child is a cheap
``vfork`` of the worker rather than a copy of its whole address space. Here, before any of the
script's code runs, the resource limits are set and (when UID is not -1) the supplementary
groups are dropped and the process becomes UID:GID; a Python script then runs in this very
interpreter (as ``python -I -S -u SCRIPT COMMAND`` would run it: ``__main__``, ``sys.argv``,
its own directory first on ``sys.path``), any other script is executed.

Only the standard library, and nothing of the platform: this runs with no site-packages.
"""

import os
import resource
import sys


def main() -> None:
    cpu, memory, fsize, nproc, uid, gid = (int(value) for value in sys.argv[1:7])
    script, command = sys.argv[7], sys.argv[8]
    for which, value in (
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, fsize),
        (resource.RLIMIT_CORE, 0),
    ):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass
    if uid >= 0:
        # RLIMIT_NPROC counts the user's processes and root ignores it, so it only means
        # something once the script runs as the unprivileged user.
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        except (ValueError, OSError):
            pass
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
            sys.stderr.write("orquestrator launcher: could not drop privileges\n")
            os._exit(126)
    with open(script, "rb") as source:
        code = source.read()
    first = code.split(b"\n", 1)[0]
    if first.startswith(b"#!") and b"python" not in first:
        os.execv(script, [script, command])
    sys.argv = [script, command]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    # As the interpreter runs a script: a fresh __main__ module (runpy would do the same, at
    # the cost of 10 ms of imports).
    main_module = type(sys)("__main__")
    main_module.__file__ = script
    sys.modules["__main__"] = main_module
    exec(compile(code, script, "exec"), main_module.__dict__)


main()
