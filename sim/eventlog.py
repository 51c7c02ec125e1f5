"""The event log of a run, and its digest.

Every message, fault and node event is appended in the order it happens (simulated time, then
sequence). The digest is the SHA-256 of the log's canonical text (docs/run-database.md): the same
scenario and seed give the same digest, byte for byte; that is how a run proves it is reproduced.
The runner drains the log into the run database as the run goes, so memory stays bounded; the
digest is kept running over everything drained.
"""

import hashlib
import sqlite3

import orjson


def _ref(body: dict) -> str:
    """The business id a message concerns (docs/run-database.md, "Identifiers")."""
    for key in ("order_id", "refund_id", "out_refund_no", "out_trade_no"):
        value = body.get(key)
        if value:
            return str(value)
    value = body.get("orig_req_id") or body.get("req_id")
    return str(value).split(".", 1)[0] if value else ""


class EventLog:
    def __init__(self) -> None:
        self.rows: list[tuple] = []     # not yet drained
        self.count = 0                  # drained
        self._hash = hashlib.sha256()

    def add(self, at_ms: int, kind: str, ref: str, src: str, dst: str, data: dict) -> None:
        self.rows.append((at_ms, kind, ref, src, dst, data))

    def message(self, at_ms: int, kind: str, src: str, dst: str, body: dict, **extra) -> None:
        data = {"type": body.get("type", ""), "body": body, **extra} if extra else {
            "type": body.get("type", ""), "body": body}
        self.rows.append((at_ms, kind, _ref(body), src, dst, data))

    @staticmethod
    def _encoded(rows: list[tuple], first_seq: int, h):
        """Rows for table `events`, hashing each canonical line into `h` on the way."""
        dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
        for seq, (at_ms, kind, ref, src, dst, data) in enumerate(rows, first_seq):
            text = dumps(data, option=sort).decode()
            h.update(f"{at_ms}|{kind}|{ref}|{src}|{dst}|{text}\n".encode())
            yield (seq, at_ms, kind, ref, src, dst, text)

    def digest(self) -> str:
        """The digest of everything logged so far (drained or not)."""
        h = self._hash.copy()
        for _ in self._encoded(self.rows, self.count + 1, h):
            pass
        return h.hexdigest()

    def drain(self, conn: sqlite3.Connection) -> None:
        """Move the pending events into table `events` (outside any open transaction)."""
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, at_ms INTEGER, kind TEXT, "
            "ref TEXT, src TEXT, dst TEXT, data TEXT)"
        )
        rows, self.rows = self.rows, []
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)",
                         self._encoded(rows, self.count + 1, self._hash))
        conn.execute("COMMIT")
        self.count += len(rows)

    def write(self, conn: sqlite3.Connection) -> str:
        """Drain the rest, index the table, and return the digest of the whole log."""
        self.drain(conn)
        conn.execute("CREATE INDEX IF NOT EXISTS events_ref ON events(ref)")
        conn.execute("CREATE INDEX IF NOT EXISTS events_kind ON events(kind)")
        return self._hash.hexdigest()
