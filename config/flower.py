"""Flower's configuration (``celery flower --conf=config/flower.py``): bind local, require auth."""

from bigdata_paas.credentials import flower_password
from bigdata_paas.settings import Config

_config = Config.from_env()

address = _config.FLOWER_HOST
port = _config.FLOWER_PORT
basic_auth = [f"{_config.FLOWER_USER}:{flower_password(_config)[0]}"]
persistent = False
purge_offline_workers = 60
