"""The host agent: runs the nodes placed on one host, reports them, and holds no secret.

An agent is a Celery worker consuming only its host's durable queue (``host.<name>``). It
knows the broker URL and its host's name, nothing else: no database URL, no token. The
pipeline asks it to start and stop nodes (``agent.start_node``, ``agent.stop_node``); it
answers, and heartbeats with the list of nodes it runs, by publishing to the pipeline queue
(``pipeline.node_report``, ``pipeline.agent_report``), where a pipeline worker records it.
"""
