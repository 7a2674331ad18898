"""``python -m bigdata_paas.client``: the paas command."""

from bigdata_paas.client.cli import main

main()
