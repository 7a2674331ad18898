"""Run host agents: ``python -m bigdata_paas.agent --host NAME`` (one host), or
``--hosts a,b,c`` to supervise one agent process per host (what ``make run`` does)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

from bigdata_paas import logs
from bigdata_paas.messaging.app import use_broker_tmp
from bigdata_paas.messaging.nodename import process_copy
from bigdata_paas.nodes.spec import check_name
from bigdata_paas.settings import Config

#: the agent gets nothing of the platform's secrets, whatever the caller's environment holds
#: (neither the values nor the names of the files that hold them: PAAS_*_FILE)
SECRETS = ("PAAS_DATABASE_URL", "PAAS_ADMIN_TOKEN", "PAAS_FLOWER_PASSWORD", "PAAS_METRICS_TOKEN")
log = logging.getLogger("bigdata_paas.agent")


def drop_secrets() -> None:
    """Forget the platform's secrets before anything else (the agents a supervisor starts
    inherit its environment)."""
    for name in SECRETS:
        os.environ.pop(name, None)
        os.environ.pop(f"{name}_FILE", None)


def run_one(host: str, concurrency: int) -> None:
    from bigdata_paas.agent.app import create_agent

    drop_secrets()
    config = Config.from_env()
    use_broker_tmp(config)
    celery = create_agent(config, host)
    celery.worker_main(
        [
            "worker",
            "-Q",
            config.host_queue(host),
            "-n",
            f"agent-{host}-{process_copy()}@%h",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            config.LOG_LEVEL,
            "--without-mingle",
            "--without-gossip",
        ]
    )


def supervise(hosts: list[str], concurrency: int) -> int:
    """One agent process per host, restarted (after a pause) if it dies; stop them all on
    SIGINT or SIGTERM."""
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def spawn(host: str) -> None:
        args = [sys.executable, "-m", "bigdata_paas.agent", "--host", host]
        children[host] = subprocess.Popen([*args, "--concurrency", str(concurrency)])

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for host in hosts:
        spawn(host)
    while not stopping:
        time.sleep(1)
        for host, child in list(children.items()):
            if child.poll() is not None and not stopping:
                log.warning("agent of %s exited with %s; starting it again", host, child.returncode)
                time.sleep(2)
                spawn(host)
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bigdata_paas.agent", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--host", help="the inventory host this agent runs nodes for")
    group.add_argument("--hosts", help="comma-separated hosts (default: PAAS_AGENT_HOSTS)")
    parser.add_argument("--concurrency", type=int, default=8, help="nodes started at once")
    args = parser.parse_args(argv)
    drop_secrets()
    settings = Config.from_env()
    logs.configure(settings.LOG_LEVEL, settings.LOG_FORMAT)
    if args.host:
        check_name(args.host, "host")
        run_one(args.host, args.concurrency)
        return 0
    hosts = (
        [h.strip() for h in args.hosts.split(",") if h.strip()]
        if args.hosts is not None
        else settings.agent_hosts
    )
    for host in hosts:
        check_name(host, "host")
    if not hosts:
        log.info("no agent to run (PAAS_AGENT_HOSTS is empty)")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    return supervise(hosts, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
