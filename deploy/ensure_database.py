"""Create the PostgreSQL database named in DATABASE_URL if it does not exist yet.

Run with the project's Python: `python deploy/ensure_database.py` (`make run-prod` does). It
connects to the server's `postgres` database as the URL's user, who must be allowed to create
databases. Any other database engine: nothing to do.
"""

import sys

import environ
import psycopg
from psycopg import sql


def main() -> int:
    env = environ.Env()
    settings = env.db_url("DATABASE_URL")
    if settings["ENGINE"] != "django.db.backends.postgresql":
        print("ensure_database: not PostgreSQL, nothing to create")
        return 0
    name = settings["NAME"]
    params = {
        "host": settings.get("HOST") or "127.0.0.1",
        "port": settings.get("PORT") or 5432,
        "user": settings.get("USER") or None,
        "password": settings.get("PASSWORD") or None,
        "dbname": "postgres",
        "connect_timeout": 5,
    }
    try:
        with psycopg.connect(**params, autocommit=True) as connection:
            found = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if found:
                print(f"ensure_database: database {name!r} exists")
                return 0
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        print(
            f"ensure_database: cannot reach PostgreSQL at {params['host']}:{params['port']} "
            f"as {params['user'] or 'the default user'}: {exc}".strip(),
            file=sys.stderr,
        )
        return 1
    print(f"ensure_database: created database {name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
