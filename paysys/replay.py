"""Anti-replay for merchant requests: a timestamp window plus a nonce seen at most once.

A request is fresh when its `timestamp` lies within `now_ms ± window_ms` and its `nonce` has
not been used by the same merchant. The `nonces` table's PRIMARY KEY (merchant_id, nonce) is the
guard: recording a nonce is an INSERT, and a constraint violation means a replay.

`at_ms` stores the request's own timestamp, so `prune` only forgets nonces whose timestamp has
left the window: a replay of a forgotten nonce is then refused by the timestamp check.

The engine owns the transaction: these functions execute statements and never commit.
"""

import sqlite3

import sqlite_utils

from paysys.errors import GatewayError


def create_tables(db: sqlite_utils.Database) -> None:
    """Create the `nonces` table (PRIMARY KEY (merchant_id, nonce)) if it does not exist."""
    db["nonces"].create(
        {"merchant_id": str, "nonce": str, "at_ms": int},
        pk=("merchant_id", "nonce"),
        not_null={"at_ms"},
        if_not_exists=True,
    )
    db["nonces"].create_index(["at_ms"], if_not_exists=True)


class ReplayGuard:
    """Timestamp window (`window_ms` either side of now) and nonce uniqueness per merchant."""

    def __init__(self, window_ms: int = 300_000) -> None:
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms <= 0:
            raise ValueError(f"window_ms: expected a positive integer, got {window_ms!r}")
        self.window_ms = window_ms

    def check(
        self,
        conn: sqlite3.Connection,
        merchant_id: str,
        nonce: str,
        timestamp: int,
        now_ms: int,
    ) -> None:
        """Raise GatewayError("REPLAY", ..., "timestamp"|"nonce") or record the nonce."""
        if abs(timestamp - now_ms) > self.window_ms:
            raise GatewayError(
                "REPLAY",
                f"timestamp: expected within {self.window_ms} ms of now ({now_ms}), "
                f"got {timestamp} ({timestamp - now_ms:+d} ms)",
                "timestamp",
            )
        try:
            conn.execute(
                "INSERT INTO nonces (merchant_id, nonce, at_ms) VALUES (?, ?, ?)",
                (merchant_id, nonce, timestamp),
            )
        except sqlite3.IntegrityError:
            raise GatewayError(
                "REPLAY",
                f"nonce: expected a nonce not used by {merchant_id} within the window, "
                f"got {nonce!r} again",
                "nonce",
            ) from None

    def prune(self, conn: sqlite3.Connection, now_ms: int) -> int:
        """Delete nonces whose timestamp is older than the window; return how many."""
        cursor = conn.execute("DELETE FROM nonces WHERE at_ms < ?", (now_ms - self.window_ms,))
        return cursor.rowcount
