"""Cost of one isolated template render, first (cold cache) and cached, next to a bare render.

For the gluster and cdh example templates with their default options, it times
``render_spec()`` (in a renderer forked by the render zygote: rlimits, compile, render, JSON
parse; result over a pipe) with the generated-code cache emptied before every render ("first
render": a new renderer compiles the source), with the cache warm and the idle renderers
closed ("cached code, new renderer": a fork and a ``compile()`` per render), and warm
("cached": a renderer of the template serves the render), and, as a baseline in the same run,
the same sandboxed render done in this process with no isolation and no limits: compiling and
rendering, and rendering a template compiled once. Scenarios are interleaved round by round so
a busy machine slows them alike. Then, scenario by scenario, the CPU a render cost: this
process's, the zygote's and the renderers' (``/proc``: ticks of 10 ms, over ``--n`` renders).
It prints figures only.

    .venv/bin/python bench/render.py [--n 200] [--templates gluster/3.7.11,cdh/5.7.2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bigdata_paas.rendering import (  # noqa: E402
    instance_context,
    merge_options,
    validate_options_document,
)
from bigdata_paas.rendering import template as template_module  # noqa: E402

EXAMPLES = ROOT / "examples"


def load_example(name: str) -> tuple[str, dict]:
    folder = EXAMPLES / name
    document = validate_options_document(json.loads((folder / "options.json").read_text()))
    service, version = name.split("/")
    context = instance_context(
        merge_options(document, {}),
        instance_id="0123456789abcdef",
        user="alice",
        service=service,
        version=version,
    )
    return (folder / "service-template.json").read_text(), context


def scenarios(module: types.ModuleType, source: str, context: dict) -> dict[str, Callable]:
    """Name -> one render, for the template module given (the current one by default)."""
    env = module.TemplateEnvironment()
    compiled = env.from_string(source)
    clear = getattr(module, "clear_code_cache", lambda: None)
    renderers = getattr(module.supervisor, "RENDERERS", None)

    def in_process_compile_and_render() -> object:
        return json.loads(env.from_string(source).render(context))

    def in_process_render_only() -> object:
        return json.loads(compiled.render(context))

    def isolated_first() -> object:
        clear()
        return module.render_spec(source, context)

    def isolated_new_renderer() -> object:
        renderers.clear()
        return module.render_spec(source, context)

    def isolated_cached() -> object:
        return module.render_spec(source, context)

    isolated_cached()  # warm the cache
    runs = {
        "in-process, compile + render (no fork)": in_process_compile_and_render,
        "in-process, render only (no fork)": in_process_render_only,
        "isolated render_spec, first render": isolated_first,
        "isolated, cached code, new renderer": isolated_new_renderer,
        "isolated render_spec, cached": isolated_cached,
    }
    if renderers is None:  # code from before the renderers: a fork per render already
        del runs["isolated, cached code, new renderer"]
    return runs


def measure(runs: dict[str, Callable], n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(n):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def _ticks(pid: int, *, reaped: bool) -> int:
    """CPU clock ticks of a process (with ``reaped``, also of the children it waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(value) for value in fields[11 : 15 if reaped else 13])


def render_processes_cpu(module: types.ModuleType) -> float:
    """CPU seconds of this process's zygote, its renderers and the renderers it reaped."""
    process = getattr(module.supervisor._ZYGOTES, "_process", None)
    if process is None:
        return 0.0
    ticks = _ticks(process.pid, reaped=True)
    for task in Path(f"/proc/{process.pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                ticks += _ticks(int(child), reaped=False)
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_cpu(module: types.ModuleType, runs: dict[str, Callable], n: int) -> dict[str, float]:
    """CPU ms per render (this process, the zygote and the renderers), scenario by scenario."""
    cpu = {}
    for name, run in runs.items():
        run()  # the zygote is up, a renderer of the template is idle where it can be
        before = time.process_time() + render_processes_cpu(module)
        for _ in range(n):
            run()
        after = time.process_time() + render_processes_cpu(module)
        cpu[name] = (after - before) * 1000 / n
    return cpu


def report(title: str, times: dict[str, list[float]], cpu: dict[str, float]) -> None:
    print(title)
    for name, values in times.items():
        p95 = statistics.quantiles(values, n=20)[18]
        print(
            f"  {name:40s} median {statistics.median(values):7.2f} ms   p95 {p95:7.2f} ms"
            f"   CPU {cpu[name]:6.2f} ms"
        )


def main(module: types.ModuleType = template_module) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="renders per scenario")
    parser.add_argument("--templates", default="gluster/3.7.11,cdh/5.7.2")
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, n={args.n}"
    )
    for name in args.templates.split(","):
        source, context = load_example(name)
        runs = scenarios(module, source, context)
        report(
            f"{name} ({len(source)} chars)",
            measure(runs, args.n),
            measure_cpu(module, runs, args.n),
        )


if __name__ == "__main__":
    main()
