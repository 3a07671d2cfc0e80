"""The connection settings reach every SQLite connection, a subclassed one too (the bench
times statements through one; it ran without WAL and case-sensitive LIKE before)."""
import sqlite3

from sqlalchemy import create_engine, text

import portal.sqlite_pragmas  # noqa: F401  (the connect-time listener)


class TimedConnection(sqlite3.Connection):
    pass


def test_a_subclassed_sqlite_connection_gets_the_pragmas(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}", connect_args={"factory": TimedConnection})
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("SELECT 'a' LIKE 'A'")).scalar() == 0  # case_sensitive_like
    engine.dispose()
