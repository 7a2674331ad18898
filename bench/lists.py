"""GET /instances with 100,000 instances stored on PostgreSQL, next to GET /health.

It makes a database, migrates it, stores ``--instances`` instances (spread over 50 users, 3
services and every status, created over the last 30 days) with one bulk INSERT, then asks the
app (Flask's test client, so no network or gunicorn in the figure) for the first page of
GET /instances four ways, ``--n`` times each, and prints the p50 and p95 of each:

* the admin's first page (every instance);
* the admin's first page filtered by status (``?status=queued``);
* the admin's first page filtered by user (``?user=user7``);
* a user's own first page.

The baseline, from the same run and the same client: GET /health, which also reads the
database.

    .venv/bin/python bench/lists.py [--instances 100000] [--n 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import ADMIN, PG_ADMIN, percentile  # noqa: E402

API = "/bigdata/api/v1"
USERS = 50
SERVICES = (("cdh", "5.7.2"), ("gluster", "3.7.11"), ("cassandra", "3.11"))
STATUSES = (
    "running",
    "running",
    "running",
    "destroyed",
    "destroyed",
    "queued",
    "failed",
    "prepared",
    "scheduled",
)


def fill(rt, count: int) -> dict[str, str]:
    """``count`` instances in one INSERT; returns a user's token."""
    from sqlalchemy import insert, select

    from bigdata_paas.models import Instance, User
    from bigdata_paas.operations.users import create_user

    tokens = {}
    for i in range(USERS):
        tokens[f"user{i}"] = create_user(rt, f"user{i}", actor="admin")["token"]
    with rt.db.session() as session:
        user_ids = list(session.scalars(select(User.id).where(User.role == "user")))
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        name, version = SERVICES[i % len(SERVICES)]
        created = now - timedelta(seconds=(count - i) * 26)  # ~30 days for 100,000
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "user_id": user_ids[i % len(user_ids)],
                "service_name": name,
                "service_version": version,
                "status": STATUSES[(i * 7) % len(STATUSES)],
                "options": {"slaves.number": 3},
                "created_at": created,
                "updated_at": created,
            }
        )
    with rt.db.session() as session:
        for start in range(0, len(rows), 10_000):
            session.execute(insert(Instance), rows[start : start + 10_000])
        session.commit()
    # What autovacuum does to a table that size soon after: statistics and the visibility map
    # (which lets a count read the index alone).
    with rt.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE instances")
    return tokens


def timed(client, path: str, headers: dict, n: int) -> list[float]:
    durations = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        durations.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.data[:200])
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=200, help="requests per kind")
    parser.add_argument("--keep", action="store_true", help="keep the database (name printed)")
    parser.add_argument("--profile", action="store_true", help="cProfile the admin's first page")
    args = parser.parse_args()

    import psycopg

    from bigdata_paas import create_app
    from bigdata_paas.cli import migrate
    from bigdata_paas.operations.users import ensure_admin
    from config import Config

    dbname = f"paas_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        env = {
            "PAAS_DATABASE_URL": f"{base}/{dbname}",
            "PAAS_BROKER_URL": "memory://",
            "PAAS_ADMIN_TOKEN": ADMIN,
            "PAAS_LOG_LEVEL": "WARNING",
            "PAAS_DATA_DIR": f"/tmp/{dbname}",
        }
        os.environ.update(env)
        config = Config.from_env(env)
        migrate(config.database_url)
        app = create_app(config)
        rt = app.extensions["paas"]
        ensure_admin(rt, ADMIN)
        started = time.perf_counter()
        tokens = fill(rt, args.instances)
        print(f"stored {args.instances} instances in {time.perf_counter() - started:.1f} s")
        client = app.test_client()
        admin = {"Authorization": f"Bearer {ADMIN}"}
        kinds = [
            ("GET /health (baseline)", "/bigdata/api/v1/health", {}),
            ("admin, first page", f"{API}/instances", admin),
            ("admin, ?status=queued", f"{API}/instances?status=queued", admin),
            ("admin, ?user=user7", f"{API}/instances?user=user7", admin),
            (
                "user7's own list",
                f"{API}/instances",
                {"Authorization": f"Bearer {tokens['user7']}"},
            ),
        ]
        for _label, path, headers in kinds:  # warm caches and connections
            timed(client, path, headers, 5)
        if args.profile:
            import cProfile
            import pstats

            with cProfile.Profile() as profile:
                timed(client, kinds[1][1], kinds[1][2], args.n)
            shown = "bigdata_paas|sqlalchemy/orm/session|psycopg/cursor"
            pstats.Stats(profile).sort_stats("cumulative").print_stats(shown, 30)
        load = os.getloadavg()[0]
        print(f"{'request':28} {'p50 ms':>8} {'p95 ms':>8}   (load average {load:.2f})")
        for label, path, headers in kinds:
            values = timed(client, path, headers, args.n)
            print(f"{label:28} {statistics.median(values):8.2f} {percentile(values, 95):8.2f}")
    finally:
        rt.db.engine.dispose() if "rt" in locals() else None
        if args.keep:
            print(f"kept database {dbname}")
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    main()
