"""What podman runs with: the shipped containers.conf when the machine needs it, and nothing
of the agent's environment; and, on this machine, why the file is needed."""

from __future__ import annotations

import subprocess

import pytest

from bigdata_paas.nodes.podman_cli import SHIPPED_CONF, needs_containers_conf, podman_env


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("PAAS_BROKER_URL", "amqp://user:secret@broker//")
    monkeypatch.setenv("PAAS_DATABASE_URL", "postgresql://user:secret@db/paas")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    env = podman_env()
    assert not {"PAAS_BROKER_URL", "PAAS_DATABASE_URL", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert "PATH" in env


def test_operator_conf_wins(monkeypatch, tmp_path):
    mine = tmp_path / "containers.conf"
    monkeypatch.setenv("CONTAINERS_CONF", str(mine))
    assert podman_env()["CONTAINERS_CONF"] == str(mine)
    assert podman_env(tmp_path / "explicit.conf")["CONTAINERS_CONF"] == str(
        tmp_path / "explicit.conf"
    )


def test_shipped_conf_only_when_needed(monkeypatch):
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    env = podman_env()
    if needs_containers_conf():
        assert env["CONTAINERS_CONF"] == str(SHIPPED_CONF)
    else:
        assert "CONTAINERS_CONF" not in env


def test_shipped_conf_sets_what_this_kind_of_machine_needs():
    text = SHIPPED_CONF.read_text()
    for line in ('runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"'):
        assert line in text
    assert '"nofile=' in text and '"nproc=' in text


def test_podmans_defaults_fail_here_and_the_shipped_conf_fixes_it(
    podman_session, node_image, tmp_path, monkeypatch
):
    """The experiment behind bigdata_paas/nodes/containers.conf, kept: podman's own limits
    (1048576 open files) cannot be set under this machine's hard limit; the shipped file's
    can."""
    if not any("nofile" in reason for reason in needs_containers_conf()):
        pytest.skip("this machine's hard nofile limit lets podman's defaults work")
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    results = {}
    for name, conf in (("defaults", empty), ("shipped", SHIPPED_CONF)):
        done = subprocess.run(
            [
                "podman",
                "run",
                "--rm",
                "--pull=never",
                "--network=none",
                "--entrypoint=/bin/true",
                node_image,
            ],
            capture_output=True,
            text=True,
            env=podman_env(conf),
            timeout=120,
        )
        results[name] = (done.returncode, done.stderr)
    assert results["defaults"][0] != 0 and "error setting rlimit" in results["defaults"][1]
    assert results["shipped"] == (0, "")
