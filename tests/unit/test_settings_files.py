"""Settings from files (``PAAS_<NAME>_FILE``), as container platforms and systemd credentials
hand secrets over: the file's text without its trailing newline, never both ways at once."""

from __future__ import annotations

import os

import pytest

from bigdata_paas.agent.__main__ import SECRETS, drop_secrets
from bigdata_paas.settings import Config, ConfigError

SECRET_SETTINGS = {
    "ADMIN_TOKEN": "admin-token-from-a-file",
    "DATABASE_URL": "postgresql+psycopg://paas:s3cret@db.example/paas",
    "BROKER_URL": "amqp://paas:s3cret@mq.example:5672/paas",
    "FLOWER_PASSWORD": "flower-password-from-a-file",
}


@pytest.mark.parametrize("name", sorted(SECRET_SETTINGS))
def test_a_secret_comes_from_the_file_its_variable_names(tmp_path, name):
    secret = tmp_path / name.lower()
    secret.write_text(SECRET_SETTINGS[name] + "\n")
    config = Config.from_env({f"PAAS_{name}_FILE": str(secret)})
    assert getattr(config, name) == SECRET_SETTINGS[name]


def test_only_the_trailing_newline_goes(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("  spaced token\r\n\n")
    assert Config.from_env({"PAAS_ADMIN_TOKEN_FILE": str(secret)}).ADMIN_TOKEN == "  spaced token"


def test_typed_settings_come_from_files_too(tmp_path):
    port = tmp_path / "port"
    port.write_text("8080\n")
    assert Config.from_env({"PAAS_PORT_FILE": str(port)}).PORT == 8080
    port.write_text("eighty\n")
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"PAAS_PORT_FILE": str(port)})
    # named, but what the file holds is not repeated (it might be a secret)
    assert str(raised.value).startswith("PAAS_PORT_FILE's content: ")
    assert "eighty" not in str(raised.value)


def test_both_the_variable_and_its_file_is_an_error_naming_them(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("from-the-file")
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"PAAS_ADMIN_TOKEN": "inline", "PAAS_ADMIN_TOKEN_FILE": str(secret)})
    assert str(raised.value) == (
        "PAAS_ADMIN_TOKEN and PAAS_ADMIN_TOKEN_FILE are both set: set one of them"
    )


def test_a_file_that_cannot_be_read_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"PAAS_DATABASE_URL_FILE": str(missing)})
    assert str(raised.value) == (
        f"PAAS_DATABASE_URL_FILE={str(missing)!r}: cannot read it: No such file or directory"
    )
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"PAAS_DATABASE_URL_FILE": str(tmp_path)})
    assert "Is a directory" in str(raised.value)


def test_flower_binds_to_its_own_host():
    assert Config.from_env({}).FLOWER_HOST == "127.0.0.1"
    config = Config.from_env({"PAAS_HOST": "0.0.0.0", "PAAS_FLOWER_HOST": "10.0.0.5"})
    assert (config.HOST, config.FLOWER_HOST) == ("0.0.0.0", "10.0.0.5")
    assert Config.from_env({"PAAS_HOST": "0.0.0.0"}).FLOWER_HOST == "127.0.0.1"


def test_the_agent_forgets_secret_files_too(monkeypatch, tmp_path):
    for name in SECRETS:
        monkeypatch.setenv(name, "x")
        monkeypatch.setenv(f"{name}_FILE", str(tmp_path / "x"))
    monkeypatch.setenv("PAAS_BROKER_URL_FILE", str(tmp_path / "broker"))
    drop_secrets()
    assert not {n for n in os.environ if n.startswith(SECRETS)}
    assert os.environ["PAAS_BROKER_URL_FILE"] == str(tmp_path / "broker")  # agents need it
