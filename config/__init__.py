"""The repository's process configuration files (gunicorn.py, flower.py); the settings
themselves live in the package (``bigdata_paas.settings``) and are re-exported here."""

from bigdata_paas.settings import Config, ConfigError, TestConfig

__all__ = ["Config", "ConfigError", "TestConfig"]
