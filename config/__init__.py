"""Settings classes: the environment is read here, once."""

from config.settings import Config, ConfigError, TestConfig

__all__ = ["Config", "ConfigError", "TestConfig"]
