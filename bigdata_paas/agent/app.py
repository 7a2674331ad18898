"""The agent's Celery app: the host's durable queue, its tasks, and the heartbeat."""

from __future__ import annotations

import logging
import threading

from celery import Celery, bootsteps

from bigdata_paas import logs
from bigdata_paas.agent.agent import Agent
from bigdata_paas.agent.local import deployment_label
from bigdata_paas.messaging.app import common_settings
from bigdata_paas.nodes import NodeDriver, select_driver
from bigdata_paas.settings import Config

log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    """Report the host and its nodes now and every AGENT_HEARTBEAT seconds, from a thread of
    its own: a slow container runtime delays a heartbeat, never the tasks."""

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, worker) -> None:
        agent: Agent = worker.app.conf.paas_agent
        interval = agent.config.AGENT_HEARTBEAT

        def beat() -> None:
            while not self.stopping.is_set():
                try:
                    agent.heartbeat()
                except Exception:  # a heartbeat never takes the agent down
                    log.exception("agent %s: heartbeat failed", agent.host)
                self.stopping.wait(interval)

        self.thread = threading.Thread(target=beat, name="paas-heartbeat", daemon=True)
        self.thread.start()

    def stop(self, worker) -> None:
        self.stopping.set()


def create_agent(config: Config, host: str, driver: NodeDriver | None = None) -> Celery:
    """The Celery app of ``host``'s agent; it needs the broker URL and the host name only."""
    celery = Celery(f"agent-{host}")
    logs.install_celery_signals()
    celery.conf.update(
        {
            **common_settings(config),
            "task_default_queue": config.host_queue(host),
            # the next heartbeat carries the truth again: no report is worth a long retry
            "task_publish_retry": False,
        }
    )
    if driver is None:
        driver = select_driver(
            config.NODE_DRIVER,
            state_dir=config.agents_path / host / "state",
            host=host,
            labels=deployment_label(config),
            scope=config.deployment,
        )
    agent = Agent(config, host, driver, celery)
    celery.conf.paas_agent = agent

    @celery.task(name="agent.start_node")
    def start_node(instance_id: str, placed: dict, networks: dict) -> str:
        """Start a placed node on this host; report running or failed."""
        return agent.start(instance_id, placed, networks)

    @celery.task(name="agent.stop_node")
    def stop_node(instance_id: str, placed: dict) -> str:
        """Stop a node and remove its disk directories; report stopped."""
        return agent.stop(instance_id, placed)

    @celery.task(name="agent.report")
    def report() -> str:
        """Report this host and its nodes now (the platform just added the host)."""
        agent.heartbeat()
        return "reported"

    celery.steps["worker"].add(Heartbeat)
    return celery
