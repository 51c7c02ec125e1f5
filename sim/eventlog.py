"""The event log of a run, and its digest.

Every message, fault and node event is appended in the order it happens (simulated time, then
sequence). The digest is the SHA-256 of the log's canonical text (docs/run-database.md): the same
scenario and seed give the same digest, byte for byte; that is how a run proves it is reproduced.
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
        self.rows: list[tuple] = []

    def add(self, at_ms: int, kind: str, ref: str, src: str, dst: str, data: dict) -> None:
        self.rows.append((at_ms, kind, ref, src, dst, data))

    def message(self, at_ms: int, kind: str, src: str, dst: str, body: dict, **extra) -> None:
        data = {"type": body.get("type", ""), "body": body, **extra} if extra else {
            "type": body.get("type", ""), "body": body}
        self.rows.append((at_ms, kind, _ref(body), src, dst, data))

    def _encoded(self):
        """(row for table `events`, canonical line) for every event, in order."""
        dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
        for seq, (at_ms, kind, ref, src, dst, data) in enumerate(self.rows, 1):
            text = dumps(data, option=sort).decode()
            yield (seq, at_ms, kind, ref, src, dst, text), f"{at_ms}|{kind}|{ref}|{src}|{dst}|{text}\n"

    def digest(self) -> str:
        h = hashlib.sha256()
        for _, line in self._encoded():
            h.update(line.encode())
        return h.hexdigest()

    def write(self, conn: sqlite3.Connection) -> str:
        """Store the log in table `events` and return the digest (computed in the same pass)."""
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, at_ms INTEGER, kind TEXT, "
            "ref TEXT, src TEXT, dst TEXT, data TEXT)"
        )
        h = hashlib.sha256()

        def rows():
            for row, line in self._encoded():
                h.update(line.encode())
                yield row

        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", rows())
        conn.execute("CREATE INDEX IF NOT EXISTS events_ref ON events(ref)")
        conn.execute("CREATE INDEX IF NOT EXISTS events_kind ON events(kind)")
        conn.execute("COMMIT")
        return h.hexdigest()
