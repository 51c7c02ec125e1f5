"""sim.eventlog: the digest is stable for the same rows, changes when any field of any row
changes, and is the SHA-256 of the canonical lines `at_ms|kind|ref|src|dst|data` (data as compact
JSON, sorted keys) of the rows write() stores in table `events` (docs/run-database.md)."""

import hashlib
import json
import sqlite3

import pytest

from sim.eventlog import EventLog

ROWS = [
    (1_700_000_000_000, "msg.deliver", "P0000000001", "merchant:M001", "paysys",
     {"type": "pay.create", "body": {"amount": 5000, "subject": "咖啡"}, "sent_ms": 1_699_999_999_990}),
    (1_700_000_000_015, "order.state", "P0000000001", "paysys", "",
     {"kind": "pay", "from": "CREATED", "to": "PROCESSING", "event": "route"}),
    (1_700_000_000_015, "ledger.post", "P0000000001", "paysys", "",
     {"entry_id": 1, "postings": [["asset:channel:bank", "CNY", 5000, 0]], "ok": True, "n": None}),
    (1_700_000_000_020, "fault.start", "0", "", "bank->paysys", {"kind": "drop", "probability": 0.3}),
]


def log_of(rows) -> EventLog:
    log = EventLog()
    for row in rows:
        log.add(*row)
    return log


def stored(log: EventLog) -> tuple[str, list[tuple]]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    digest = log.write(conn)
    rows = conn.execute("SELECT seq, at_ms, kind, ref, src, dst, data FROM events ORDER BY seq").fetchall()
    conn.close()
    return digest, rows


def test_digest_is_stable_for_the_same_rows():
    log = log_of(ROWS)
    assert log.digest() == log.digest()
    assert log_of(ROWS).digest() == log.digest()
    assert len(log.digest()) == 64 and int(log.digest(), 16) >= 0


def test_key_order_inside_data_does_not_matter():
    shuffled = [(*row[:5], dict(reversed(list(row[5].items())))) for row in ROWS]
    assert log_of(shuffled).digest() == log_of(ROWS).digest()


CHANGES = {
    "at_ms": lambda r: (r[0] + 1, *r[1:]),
    "kind": lambda r: (r[0], r[1] + "x", *r[2:]),
    "ref": lambda r: (*r[:2], "P0000000002", *r[3:]),
    "src": lambda r: (*r[:3], "bank", *r[4:]),
    "dst": lambda r: (*r[:4], "wechat", r[5]),
    "data value": lambda r: (*r[:5], {**r[5], "kind": "refund"}),
    "data key": lambda r: (*r[:5], {**r[5], "extra": 0}),
    "data type": lambda r: (*r[:5], {**r[5], "to": 1}),
}


@pytest.mark.parametrize("field", list(CHANGES))
@pytest.mark.parametrize("index", range(len(ROWS)))
def test_digest_changes_when_any_field_changes(field, index):
    changed = list(ROWS)
    changed[index] = CHANGES[field](ROWS[index])
    assert log_of(changed).digest() != log_of(ROWS).digest()


def test_digest_changes_with_the_order_and_the_number_of_rows():
    base = log_of(ROWS).digest()
    assert log_of([ROWS[1], ROWS[0], *ROWS[2:]]).digest() != base
    assert log_of(ROWS[:-1]).digest() != base
    assert log_of([*ROWS, ROWS[-1]]).digest() != base


def test_write_stores_every_row_in_order():
    _, rows = stored(log_of(ROWS))
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert [r[1:6] for r in rows] == [row[:5] for row in ROWS]
    assert [json.loads(r[6]) for r in rows] == [row[5] for row in ROWS]


def test_digest_is_sha256_of_the_canonical_lines_of_the_events_table():
    log = log_of(ROWS)
    written, rows = stored(log)
    text = "".join(f"{at}|{kind}|{ref}|{src}|{dst}|{data}\n" for _, at, kind, ref, src, dst, data in rows)
    assert written == log.digest() == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_stored_data_is_compact_json_with_sorted_keys():
    _, rows = stored(log_of(ROWS))
    for row in rows:
        canonical = json.dumps(json.loads(row[6]), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        assert row[6] == canonical


def test_empty_log_digest_is_sha256_of_nothing():
    assert log_of([]).digest() == hashlib.sha256(b"").hexdigest()
    assert stored(log_of([])) == (hashlib.sha256(b"").hexdigest(), [])


@pytest.mark.parametrize(("body", "ref"), [
    ({"type": "pay.create", "order_id": "P0000000042", "req_id": "X.p1"}, "P0000000042"),
    ({"type": "refund.create", "refund_id": "R0000000007"}, "R0000000007"),
    ({"type": "wx.refund", "out_refund_no": "R0000000008"}, "R0000000008"),
    ({"type": "wx.order", "out_trade_no": "P0000000009"}, "P0000000009"),
    ({"type": "bank.query", "orig_req_id": "P0000000042.p1", "req_id": "P0000000042.q2"}, "P0000000042"),
    ({"type": "bank.pay", "req_id": "P0000000042.p1"}, "P0000000042"),
    ({"type": "bank.unsign", "req_id": "AG0001.u1"}, "AG0001"),
    ({"type": "net.error"}, ""),
])
def test_message_rows_carry_the_ref_of_their_body(body, ref):
    log = EventLog()
    log.message(5, "msg.deliver", "paysys", "bank", body, sent_ms=1)
    assert log.rows == [(5, "msg.deliver", ref, "paysys", "bank",
                         {"type": body["type"], "body": body, "sent_ms": 1})]


def test_draining_in_chunks_gives_the_same_table_and_digest():
    whole = log_of(ROWS)
    expected_digest, expected_rows = stored(whole)
    log = EventLog()
    conn = sqlite3.connect(":memory:", isolation_level=None)
    log.add(*ROWS[0])
    log.drain(conn)
    log.add(*ROWS[1])
    log.add(*ROWS[2])
    assert log.digest() == log_of(ROWS[:3]).digest()  # drained and pending, together
    log.drain(conn)
    log.drain(conn)  # nothing pending: a no-op
    log.add(*ROWS[3])
    assert log.write(conn) == expected_digest == log.digest()
    rows = conn.execute("SELECT seq, at_ms, kind, ref, src, dst, data FROM events ORDER BY seq").fetchall()
    assert rows == expected_rows
