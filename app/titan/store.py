"""Transactions kept in SQLite, so /api/transactions does real disk I/O.

Each thread of each worker opens its own connection (sqlite3 connections must
not cross threads or forks). WAL mode lets readers in one worker proceed while
another worker writes; busy_timeout makes concurrent writers wait, not fail.
"""
import os
import sqlite3
import threading
import time

# Old rows are pruned so that the traffic generator cannot grow the file forever.
MAX_ROWS = 100_000
_PRUNE_EVERY = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    amount_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class TransactionStore:
    def __init__(self, data_dir):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "titan.sqlite3")
        self._local = threading.local()
        self._conn().execute(_SCHEMA)

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def create(self, amount_cents, currency, description):
        created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conn = self._conn()
        cur = conn.execute(
            "INSERT INTO transactions (amount_cents, currency, description, created_at) VALUES (?, ?, ?, ?)",
            (amount_cents, currency, description, created_at))
        row_id = cur.lastrowid
        if row_id % _PRUNE_EVERY == 0:
            conn.execute("DELETE FROM transactions WHERE id <= ?", (row_id - MAX_ROWS,))
        return _as_dict(conn.execute("SELECT * FROM transactions WHERE id = ?", (row_id,)).fetchone())

    def recent(self, limit):
        rows = self._conn().execute("SELECT * FROM transactions ORDER BY id DESC LIMIT ?", (limit,))
        return [_as_dict(r) for r in rows]


def _as_dict(row):
    return {
        "id": row["id"],
        "amount": row["amount_cents"] / 100,
        "currency": row["currency"],
        "description": row["description"],
        "created_at": row["created_at"],
    }
