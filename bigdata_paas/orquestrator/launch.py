"""Start an orquestrator script: limits, then the unprivileged user, then the script itself.

The worker starts this file as ``<python> -I -S -u launch.py`` ahead of the command it will
serve, in a child it spawns without a ``preexec_fn`` (a cheap ``vfork`` of the worker, not a
copy of its whole address space), in a session of its own, with only the base environment.
The interpreter's start-up is paid while the worker waits for work. Then it reads one job,
a JSON line on stdin (the limits, the user to become, the working directory, the script's
environment, the script and its command), and from then on stdin is ``/dev/null``. Before any
of the script's code runs, the working directory and the environment are the job's, the
resource limits are set and (when ``uid`` is not -1) the supplementary groups are dropped and
the process becomes uid:gid; a Python script then runs in this very interpreter as ``python -I
-S -u SCRIPT COMMAND`` would run it (``__main__``, ``sys.argv``, its own directory first on
``sys.path``); any other script is executed. A launcher whose worker went away reads no job
and ends.

Only the standard library, and nothing of the platform: this runs with no site-packages.
"""

import json
import os
import resource
import sys


def main() -> None:
    line = sys.stdin.buffer.readline()
    if not line:
        return  # the worker went away before it had work for this launcher
    job = json.loads(line)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    for which, value in (
        (resource.RLIMIT_CPU, job["cpu"]),
        (resource.RLIMIT_AS, job["memory"]),
        (resource.RLIMIT_FSIZE, job["fsize"]),
        (resource.RLIMIT_CORE, 0),
    ):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass
    uid, gid = job["uid"], job["gid"]
    if uid >= 0:
        # RLIMIT_NPROC counts the user's processes and root ignores it, so it only means
        # something once the script runs as the unprivileged user.
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
        except (ValueError, OSError):
            pass
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
            sys.stderr.write("orquestrator launcher: could not drop privileges\n")
            os._exit(126)
    script, command = job["script"], job["command"]
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
