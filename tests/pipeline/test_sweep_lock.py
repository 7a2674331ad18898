"""Two beats cannot sweep at once: the second sweep finds the lock held, skips and says so."""

from __future__ import annotations

import logging

import pytest

from bigdata_paas.dblock import try_exclusive
from bigdata_paas.operations.lifecycle import recovery
from tests.conftest import make_app


def check(app, caplog) -> None:
    rt = app.extensions["paas"]
    with app.app_context():
        with try_exclusive(rt.db, "sweep") as held:
            assert held
            with try_exclusive(rt.db, "sweep") as again:
                assert not again  # another holder is refused at once, not made to wait
            with try_exclusive(rt.db, "another") as other:
                assert other  # a lock of another name is another lock
            with caplog.at_level(logging.WARNING, logger=recovery.__name__):
                skipped = recovery.sweep(rt)
        after = recovery.sweep(rt)  # released with its holder
    assert skipped == {"skipped": 1}
    assert "sweep skipped: another sweep is running" in caplog.text
    assert "skipped" not in after and after["republished"] == 0


def test_a_second_sweep_skips_on_sqlite(app, caplog):
    check(app, caplog)


@pytest.mark.integration
def test_a_second_sweep_skips_on_postgresql(services_env, caplog):
    app = make_app(services_env)
    try:
        check(app, caplog)
    finally:
        app.extensions["paas"].db.dispose()
