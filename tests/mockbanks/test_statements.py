"""Statement files of the mocks (mockbanks/statements.py, bank.statement, wx.downloadbill): what a
day's file holds, readiness, caching, every statement fault and its log, determinism."""

import random
import re

import mt940
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockbanks.bank import Bank
from mockbanks.bills import Line
from mockbanks.faults import KINDS, ChannelFault, ChannelFaults
from mockbanks.fees import Fee
from mockbanks.statements import DAY_MS, Statements, day_from, day_of, iso
from mockbanks.wechat import WeChat
from tests.mockbanks.test_bank import SERVICE_MS, T0, call, make_bank, pay, sign

H = 3_600_000
D = day_of(T0)                          # 2026-11-02, T0 is 09:00 local
MIDNIGHT = D * DAY_MS - 8 * H           # the local midnight starting D
READY = MIDNIGHT + DAY_MS + 9 * H       # D's file is ready at 09:00 on D+1
LATE = MIDNIGHT + 10 * DAY_MS


def line(day: int, i: int, kind: str = "pay", amount: int = 1000) -> Line:
    ref = f"{'P' if kind == 'pay' else 'R'}{day % 1000:03d}{i:04d}"
    channel_ref = f"T{day % 1000:03d}{i:04d}"
    key = f"pay:{channel_ref}" if kind == "pay" else f"refund:{ref}"
    return Line(key, kind, ref, channel_ref, amount + i, 10 if kind == "pay" else 0, "CNY",
                "SUCCESS", day * DAY_MS - 8 * H + i * 60_000)


ROWS = {d: [line(d, i, "refund" if i % 3 == 2 else "pay") for i in range(6)]
        for d in range(D - 1, D + 4)}


def fault(kind: str, fid: int = 1, start: int = MIDNIGHT, end: int = MIDNIGHT + 1,
          p: float = 1.0, **params) -> ChannelFault:
    return ChannelFault(fid, kind, start, end, p, params, None)


def statements(*faults: ChannelFault, fmt: str = "mt940", seed: int = 1,
               rows: dict | None = None) -> Statements:
    table = ROWS if rows is None else rows
    return Statements(channel="c", fmt=fmt, faults=ChannelFaults(faults, random.Random(seed)),
                      rows=lambda day: table.get(day, []), fee_rule=Fee(rate_bp=100))


def fetch_all(s: Statements, days=range(D - 1, D + 4), now: int = LATE) -> dict:
    return {d: s.fetch(d, now)[0] for d in days}


def keys(rows: list[Line]) -> set[str]:
    return {r.key for r in rows}


# -- dates, readiness, caching -------------------------------------------------------------------
def test_days_and_dates() -> None:
    assert iso(D) == "2026-11-02" and day_from("2026-11-02") == D
    assert day_from("20261102", compact=True) == D
    assert [day_from(x) for x in ("2026-02-30", "20261102", None, "２０２６-11-02")] == [None] * 4
    assert day_from("2026-11-02", compact=True) is None
    assert day_of(MIDNIGHT) == D and day_of(MIDNIGHT - 1) == D - 1


def test_file_is_ready_at_9_the_next_morning_and_then_cached() -> None:
    calls = []
    s = Statements(channel="c", fmt="mt940", faults=ChannelFaults((), random.Random(1)),
                   rows=lambda day: calls.append(day) or ROWS[day])
    assert s.fetch(D, READY - 1) == (None, [])
    assert s.fetch(D + 5, READY) == (None, [])          # a day to come
    text, events = s.fetch(D, READY)
    assert events == [] and text.count(":61:") == 6
    assert s.fetch(D, LATE) == (text, []) and calls == [D]
    assert s.file_rows(D) == ROWS[D] and s.log == []


def test_statement_format_and_ready_time_are_validated() -> None:
    with pytest.raises(ValueError, match="statement_format: expected one of"):
        statements(fmt="csv")
    with pytest.raises(ValueError, match="statement_ready_ms: expected an integer >= 0"):
        Statements(channel="c", fmt="mt940", faults=ChannelFaults((), random.Random(1)),
                   rows=lambda d: [], ready_ms=-1)
    with pytest.raises(ValueError, match=r"params.count: fault 1 \(stmt_amount\) expects an "
                                         r"integer >= 1, got 'two'"):
        statements(fault("stmt_amount", count="two"))
    with pytest.raises(ValueError, match="params.delay: fault 1 .stmt_late. needs a delay"):
        statements(fault("stmt_late"))
    with pytest.raises(ValueError, match="stmt_currency .fault 1. is impossible in the alipay"):
        statements(fault("stmt_currency"), fmt="alipay")


# -- every statement fault ------------------------------------------------------------------------
def only(s: Statements) -> dict:
    assert len(s.log) == 1, s.log
    return s.log[0]


def test_missing_rows_are_removed_and_logged() -> None:
    s = statements(fault("stmt_missing_row", count=2))
    text, events = s.fetch(D, READY)
    gone = {e["key"] for e in s.log}
    assert len(gone) == 2 and keys(s.file_rows(D)) == keys(ROWS[D]) - gone
    assert text.count(":61:") == 4
    e = s.log[0]
    row = next(r for r in ROWS[D] if r.key == e["key"])
    assert e == {"fault_id": 1, "kind": "stmt_missing_row", "channel": "c", "date": "2026-11-02",
                 "cls": "platform_only", "key": row.key, "ref": row.ref,
                 "detail": {"field": "row", "true": "present", "file": "absent"}}
    assert events[0] == ("event", "fault.fired", row.ref, {"fault_id": 1, "date": "2026-11-02",
                                                          "kind": "stmt_missing_row",
                                                          "key": row.key})
    assert fetch_all(statements())[D - 1] == fetch_all(s)[D - 1]      # other days untouched


def test_extra_row_is_a_fabricated_pay_of_the_day() -> None:
    s = statements(fault("stmt_extra_row"))
    text, _ = s.fetch(D, READY)
    e = only(s)
    assert (e["cls"], e["detail"]["field"], e["detail"]["file"]) == ("channel_only", "row",
                                                                    "present")
    row = Line(**e["detail"]["row"])
    assert re.fullmatch(r"X\d{10}", row.ref) and re.fullmatch(r"XT\d{10}", row.channel_ref)
    assert e["key"] == row.key == f"pay:{row.channel_ref}" and e["ref"] == row.ref
    assert 100 <= row.amount <= 100_000 and row.fee == Fee(rate_bp=100).fee(row.amount)
    assert day_of(row.at_ms) == D and row.status == "SUCCESS"
    assert keys(s.file_rows(D)) == keys(ROWS[D]) | {row.key}
    assert f"NTRF{row.ref}//{row.channel_ref}" in text


@pytest.mark.parametrize("seed", range(8))
def test_amount_moves_by_delta_never_to_zero(seed: int) -> None:
    rows = {D: [line(D, 0, amount=50)._replace(amount=50), line(D, 1, amount=5000)]}
    s = statements(fault("stmt_amount", count=2), seed=seed, rows=rows)
    s.fetch(D, READY)
    by_key = {r.key: r for r in s.file_rows(D)}
    for e in s.log:
        true, written = e["detail"]["true"], e["detail"]["file"]
        assert abs(written - true) == 100 and written > 0 and by_key[e["key"]].amount == written
        assert e["cls"] == ("amount_over" if written > true else "amount_under")
    assert {e["detail"]["file"] for e in s.log} & {150}                # 50 can only go up


def test_amount_sign_is_drawn() -> None:
    signs = set()
    for seed in range(20):
        s = statements(fault("stmt_amount"), seed=seed)
        s.fetch(D, READY)
        signs.add(only(s)["cls"])
    assert signs == {"amount_over", "amount_under"}


@pytest.mark.parametrize("fmt, pay_status, refund_status", [
    ("mt940", "REVERSED", "REVERSED"), ("wechat", "CLOSED", "FAIL"), ("alipay", "CLOSED", "CLOSED")])
def test_status_fault_writes_the_formats_status(fmt, pay_status, refund_status) -> None:
    s = statements(fault("stmt_status", count=6), fmt=fmt)
    text, _ = s.fetch(D, READY)
    assert len(s.log) == 6 and {e["cls"] for e in s.log} == {"status"}
    for r in s.file_rows(D):
        assert r.status == (pay_status if r.kind == "pay" else refund_status)
    assert {e["detail"]["true"] for e in s.log} == {"SUCCESS"}
    expected = {"mt940": ":61:", "wechat": f"`{pay_status}", "alipay": "status=CLOSED"}[fmt]
    assert expected in text


def test_fee_fault_hits_pays_only() -> None:
    s = statements(fault("stmt_fee", count=10, delta=7))
    s.fetch(D, READY)
    pays = [r for r in ROWS[D] if r.kind == "pay"]
    assert len(s.log) == len(pays) and {e["cls"] for e in s.log} == {"fee"}
    assert all(e["detail"] == {"field": "fee", "true": 10, "file": 17} for e in s.log)
    assert {r.fee for r in s.file_rows(D) if r.kind == "pay"} == {17}


def test_currency_fault() -> None:
    s = statements(fault("stmt_currency", currency="USD"), fmt="wechat")
    text, _ = s.fetch(D, READY)
    e = only(s)
    assert e["cls"] == "currency" and e["detail"] == {"field": "currency", "true": "CNY",
                                                      "file": "USD"}
    assert text.count("`USD,") == 1


def test_next_day_moves_rows_into_the_next_file_once() -> None:
    s = statements(fault("stmt_next_day", count=2))
    files = fetch_all(s, days=[D + 1, D])           # whatever the order of the downloads
    moved = {e["key"] for e in s.log}
    assert len(s.log) == 2 and {e["cls"] for e in s.log} == {"cross_day"}
    assert all(e["date"] == "2026-11-02" and e["detail"] == {
        "field": "file_date", "true": "2026-11-02", "file": "2026-11-03"} for e in s.log)
    assert keys(s.file_rows(D)) == keys(ROWS[D]) - moved
    assert keys(s.file_rows(D + 1)) == keys(ROWS[D + 1]) | moved
    assert {day_of(r.at_ms) for r in s.file_rows(D + 1) if r.key in moved} == {D}
    assert files[D + 1].count(":61:2611021103") == 2      # own value date D, entry date D+1
    s.fetch(D, LATE + 1), s.fetch(D + 1, LATE + 1)
    assert len(s.log) == 2


def test_next_day_does_nothing_when_the_next_day_has_no_file() -> None:
    s = statements(fault("stmt_next_day"), fault("stmt_none", 2, MIDNIGHT + DAY_MS,
                                                 MIDNIGHT + DAY_MS + 1))
    fetch_all(s)
    assert [e["kind"] for e in s.log] == ["stmt_none"]
    assert s.file_rows(D) == ROWS[D]


def test_late_file() -> None:
    s = statements(fault("stmt_late", delay=6 * H))
    assert s.fetch(D, READY - 1) == (None, []) and s.log == []
    text, events = s.fetch(D, READY + 1)
    assert text is None and len(events) == 1
    e = only(s)
    assert (e["cls"], e["key"], e["ref"]) == ("late_file", "file:2026-11-02", "")
    assert e["detail"] == {"field": "ready_ms", "true": READY, "file": READY + 6 * H,
                           "delay": 6 * H}
    assert s.fetch(D, READY + 6 * H - 1) == (None, [])
    text, events = s.fetch(D, READY + 6 * H)
    assert text.count(":61:") == 6 and events == [] and len(s.log) == 1


def test_no_file_ever_and_no_row_fault_on_it() -> None:
    s = statements(fault("stmt_none"), fault("stmt_missing_row", 2))
    assert s.fetch(D, READY)[0] is None and s.fetch(D, LATE)[0] is None
    e = only(s)
    assert (e["kind"], e["cls"], e["key"]) == ("stmt_none", "missing_file", "file:2026-11-02")
    assert s.fetch(D + 1, LATE)[0] is not None


def test_malformed_first_download_then_the_good_copy() -> None:
    s = statements(fault("stmt_malformed"))
    broken, events = s.fetch(D, READY)
    good, again = s.fetch(D, READY + 1)
    assert broken != good and again == [] and len(events) == 1
    e = only(s)
    assert (e["cls"], e["key"]) == ("malformed_file", "file:2026-11-02")
    n = e["detail"]["line"]
    assert broken.split("\n")[n - 1] == good.split("\n")[n - 1].replace(
        e["detail"]["true"], e["detail"]["file"])
    assert good == fetch_all(statements())[D]


def test_window_probability_and_empty_days() -> None:
    s = statements(fault("stmt_missing_row", start=MIDNIGHT + 1, end=MIDNIGHT + 2 * DAY_MS + 1))
    fetch_all(s)
    assert [e["date"] for e in s.log] == ["2026-11-03", "2026-11-04"]
    s = statements(fault("stmt_missing_row", p=0.0, start=MIDNIGHT, end=LATE))
    fetch_all(s)
    assert s.log == []
    s = statements(fault("stmt_missing_row"), fault("stmt_malformed", 2), rows={})
    assert s.fetch(D, READY)[0].count(":61:") == 0 and s.log == []


# -- determinism -----------------------------------------------------------------------------------
ALL = (fault("stmt_missing_row", 1, MIDNIGHT, LATE, 0.5), fault("stmt_amount", 2, MIDNIGHT, LATE),
       fault("stmt_next_day", 3, MIDNIGHT, LATE, 0.5), fault("stmt_late", 4, MIDNIGHT, LATE, 0.5,
                                                             delay=H),
       fault("stmt_extra_row", 5, MIDNIGHT, LATE, 0.5), fault("stmt_malformed", 6, MIDNIGHT,
                                                              LATE, 0.5))


def test_same_seed_same_files_and_log_whenever_paysys_downloads() -> None:
    a, b, c = statements(*ALL, seed=9), statements(*ALL, seed=9), statements(*ALL, seed=9)
    for d in range(D, D + 4):                 # a: each day once it is ready, then again
        a.fetch(d, a.ready_at(d))
        a.fetch(d, a.ready_at(d) + 2 * H)
    for d in reversed(range(D, D + 4)):        # b: late, last day first
        b.fetch(d, LATE)
    for d in range(D, D + 4):
        c.fetch(d, c.ready_at(d))
        c.fetch(d, c.ready_at(d) + 2 * H)
    assert [a.fetch(d, LATE + 1) for d in range(D, D + 4)] == \
        [b.fetch(d, LATE + 1) for d in range(D, D + 4)]
    assert a.log == c.log and len(a.log) >= 4
    ordered = sorted(a.log, key=repr)
    assert ordered == sorted(b.log, key=repr)
    other = statements(*ALL, seed=10)
    fetch_all(other, days=range(D, D + 4))
    assert sorted(other.log, key=repr) != ordered          # another seed, other faults


# -- the log describes the faulty rows exactly ---------------------------------------------------
ROW_KINDS = ("stmt_missing_row", "stmt_extra_row", "stmt_amount", "stmt_status", "stmt_fee",
             "stmt_currency", "stmt_next_day")


def rebuild(clean: dict, log: list[dict], day: int) -> list[Line]:
    """The rows of `day`'s file from the clean rows and the log only."""
    rows = {r.key: r for r in clean.get(day, [])}
    for e in log:
        if e["key"].startswith("file:"):
            continue
        if e["date"] == iso(day - 1) and e["kind"] == "stmt_next_day":
            rows[e["key"]] = next(r for r in clean[day - 1] if r.key == e["key"])
        if e["date"] != iso(day):
            continue
        detail = e["detail"]
        if e["kind"] in ("stmt_missing_row", "stmt_next_day"):
            del rows[e["key"]]
        elif e["kind"] == "stmt_extra_row":
            rows[e["key"]] = Line(**detail["row"])
        else:
            assert getattr(rows[e["key"]], detail["field"]) == detail["true"]
            rows[e["key"]] = rows[e["key"]]._replace(**{detail["field"]: detail["file"]})
    return sorted(rows.values(), key=lambda r: (r.at_ms, r.channel_ref))


day_rows = st.lists(st.tuples(st.sampled_from(["pay", "refund"]), st.integers(1, 10**7),
                              st.integers(0, DAY_MS - 1)), max_size=6)
faults_st = st.lists(st.tuples(st.sampled_from(ROW_KINDS + ("stmt_none",)), st.integers(0, 3),
                               st.integers(1, 3), st.sampled_from([0.5, 1.0]),
                               st.integers(1, 500)), max_size=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=st.lists(day_rows, min_size=3, max_size=3), specs=faults_st, seed=st.integers(0, 99))
def test_the_log_says_exactly_what_changed(days, specs, seed) -> None:
    clean = {}
    for offset, spec in enumerate(days):
        day = D + offset
        clean[day] = sorted((Line(f"pay:T{day}-{i}" if k == "pay" else f"refund:R{day}-{i}", k,
                                  f"R{day}-{i}", f"T{day}-{i}", amount, amount // 100, "CNY",
                                  "SUCCESS", day * DAY_MS - 8 * H + t)
                             for i, (k, amount, t) in enumerate(spec)),
                            key=lambda r: (r.at_ms, r.channel_ref))
    faults = [ChannelFault(i, kind, MIDNIGHT + first * DAY_MS, MIDNIGHT + (first + 1) * DAY_MS,
                           p, {"count": count, "delta": delta})
              for i, (kind, first, count, p, delta) in enumerate(specs)]
    s = statements(*faults, seed=seed, rows=clean)
    texts = fetch_all(s, days=range(D, D + 4))
    row_keys = [e["key"] for e in s.log if not e["key"].startswith("file:")]
    assert len(row_keys) == len(set(row_keys))                  # no row is hit twice
    for day in range(D, D + 4):
        if texts[day] is None:
            assert any(e["kind"] == "stmt_none" and e["date"] == iso(day) for e in s.log)
            continue
        assert rebuild(clean, s.log, day) == s.file_rows(day)
        assert texts[day].count(":61:") == len(s.file_rows(day))
        assert all(r.amount > 0 for r in s.file_rows(day))


# -- through the nodes -------------------------------------------------------------------------------
def statement(bank: Bank, date: object, now: int, req_id: str = "ST1") -> tuple[dict, list]:
    reply, _, events = call(bank, {"type": "bank.statement", "req_id": req_id, "date": date}, now)
    return reply, events


def test_bank_statement_lists_the_truth_of_the_local_day() -> None:
    bank = make_bank(platform_balance=10_000)
    ag = sign(bank, "U1", "6222000000001111", now=MIDNIGHT - H)
    pay(bank, "P1", ag, 1000, now=MIDNIGHT - 10_000)                   # the day before
    pay(bank, "P2", ag, 2000, now=MIDNIGHT + H)
    pay(bank, "P3.2", ag, 3000, now=MIDNIGHT + DAY_MS - SERVICE_MS // 2)   # completes on D+1
    call(bank, {"type": "bank.refund", "req_id": "R1", "orig_req_id": "P2", "amount": 500,
                "currency": "CNY"}, MIDNIGHT + 2 * H)
    call(bank, {"type": "bank.payout", "req_id": "S1", "account": "merchant:M001", "amount": 100,
                "currency": "CNY"}, MIDNIGHT + 3 * H)
    reply, _ = statement(bank, "2026-11-02", READY - 1)
    assert reply == {"type": "bank.statement.reply", "req_id": "ST1", "result": "NOT_READY",
                     "code": None, "date": "2026-11-02", "format": "mt940", "content": None}
    reply, events = statement(bank, "2026-11-02", READY)
    assert reply["result"] == "SUCCESS" and events == []
    parsed = mt940.models.Transactions()
    parsed.parse(reply["content"])
    truth = [t for t in bank.truth.txns() if day_of(t["at_ms"]) == D
             and t["kind"] in ("pay", "refund")]
    assert [(p.data["customer_reference"], p.data["bank_reference"]) for p in parsed] == \
        [(t["ref"], t["channel_ref"]) for t in truth]
    assert [t["ref"] for t in truth] == ["P2", "R1"]
    assert statement(bank, "2026-11-03", READY + DAY_MS)[0]["content"].count("NTRFP3//") == 1
    assert statement(bank, "2026-11-02", LATE, "ST2")[0]["content"] == reply["content"]


def test_bank_statement_refusals() -> None:
    bank = make_bank()
    for date in (None, "20261102", "2026-02-30"):
        reply, _ = statement(bank, date, READY)
        assert (reply["result"], reply["code"], reply["field"]) == ("ERROR", "INVALID_PARAM",
                                                                    "date")
    bank = Bank(name="bank", rng=random.Random(7), fee_rule=Fee(), capacity=1, max_queue_ms=0,
                service_time=lambda rng: 10,
                faults=[ChannelFault(1, "maintenance", READY, READY + H, 1.0)])
    reply, events = statement(bank, "2026-11-02", READY)
    assert (reply["result"], reply["code"]) == ("REJECTED", "SYSTEM_MAINTENANCE")


def test_bank_statement_faults_reach_the_log_and_the_event_log() -> None:
    bank = Bank(name="bank", rng=random.Random(7), fee_rule=Fee(), capacity=8, max_queue_ms=0,
                service_time=lambda rng: 10, statement_ready_ms=H,
                faults=[fault("stmt_none", 4)])
    assert "stmt_none" in KINDS
    reply, events = statement(bank, "2026-11-02", MIDNIGHT + DAY_MS + H)
    assert reply["result"] == "NOT_READY"
    assert events == [("event", "fault.fired", "", {"fault_id": 4, "kind": "stmt_none",
                                                    "date": "2026-11-02",
                                                    "key": "file:2026-11-02"})]
    assert [e["cls"] for e in bank.statement_log] == ["missing_file"]


def wx_node(fmt: str = "wechat", faults=()) -> WeChat:
    wx = WeChat(name="wx", rng=random.Random(3), fee_rule=Fee(rate_bp=60), api_key="k",
                statement_format=fmt, faults=faults)
    wx.open_wallet("U1", 100_000)
    return wx


def wx_paid_and_refunded(wx: WeChat) -> None:
    for body, src in (({"type": "wx.unifiedorder", "out_trade_no": "P7", "total_fee": 1234,
                        "fee_type": "CNY", "notify_url": "paysys", "time_expire": None}, "paysys"),
                      ({"type": "wx.user.pay", "prepay_id": "wx0000000001", "user_id": "U1"},
                       "user:U1"),
                      ({"type": "wx.refund", "out_trade_no": "P7", "out_refund_no": "R3.1",
                        "total_fee": 1234, "refund_fee": 500}, "paysys")):
        now = T0 + 1000 if body["type"] == "wx.refund" else T0
        assert wx.handle(src, body, now)[0][1]["result_code" if src == "paysys" else "result"] \
            == "SUCCESS"


def downloadbill(wx: WeChat, now: int, **fields) -> tuple[dict, list]:
    effects = wx.handle("paysys", {"type": "wx.downloadbill", "req_id": "B1",
                                   "bill_date": "20261102", "bill_type": "ALL", **fields}, now)
    return effects[0][1], effects[1:]


def test_wechat_bill_of_the_day() -> None:
    wx = wx_node()
    wx_paid_and_refunded(wx)
    reply, _ = downloadbill(wx, READY - 1)
    assert (reply["return_code"], reply["return_msg"], reply["req_id"], reply["bill_date"]) == (
        "FAIL", "No Bill Exist", "B1", "20261102")
    reply, _ = downloadbill(wx, READY)
    assert (reply["return_code"], reply["format"], reply["req_id"]) == ("SUCCESS", "wechat", "B1")
    lines = reply["content"].split("\r\n")
    assert lines[1].split(",")[5:10] == ["`WXT0000000002", "`P7", "`oU1", "`NATIVE", "`SUCCESS"]
    assert lines[1].split(",")[22:25] == ["`0.07", "`0.60%", "`12.34"]
    assert lines[2].split(",")[5:10] == ["`WXT0000000002", "`P7", "`oU1", "`NATIVE", "`REFUND"]
    assert lines[2].split(",")[14:17] == ["`WXR0000000003", "`R3", "`5.00"]


def test_alipay_bill_of_the_day() -> None:
    wx = wx_node("alipay")
    wx_paid_and_refunded(wx)
    reply, _ = downloadbill(wx, READY)
    assert reply["format"] == "alipay"
    lines = reply["content"].split("\r\n")
    assert lines[5].split(",")[:3] == ["WXT0000000002", "P7", "交易"]
    assert lines[6].split(",")[:3] + lines[6].split(",")[21:22] == [
        "WXR0000000003", "P7", "退款", "R3"]


def test_wechat_bill_refusals() -> None:
    wx = wx_node()
    for fields, field in (({"bill_date": "2026-11-02"}, "bill_date"),
                          ({"bill_date": None}, "bill_date"), ({"bill_type": "SUCCESS"},
                                                               "bill_type")):
        reply, _ = downloadbill(wx, READY, **fields)
        assert (reply["err_code"], reply["field"], reply["req_id"]) == ("PARAM_ERROR", field,
                                                                         "B1")
    with pytest.raises(ValueError, match="statement_format: expected 'wechat' or 'alipay'"):
        wx_node("mt940")
    with pytest.raises(ValueError, match="stmt_currency .fault 1. is impossible"):
        wx_node("alipay", [fault("stmt_currency")])
    wx = wx_node(faults=[ChannelFault(1, "maintenance", READY, READY + H, 1.0)])
    reply, events = downloadbill(wx, READY)
    assert (reply["err_code"], reply["req_id"], reply["bill_date"]) == ("SYSTEM_MAINTENANCE",
                                                                         "B1", "20261102")


def test_wechat_bill_faults_are_logged() -> None:
    wx = wx_node(faults=[fault("stmt_status", 2)])
    wx_paid_and_refunded(wx)
    reply, events = downloadbill(wx, READY)
    assert len(wx.statement_log) == 1 and events[0][1] == "fault.fired"
    e = wx.statement_log[0]
    assert e["detail"]["file"] == ("CLOSED" if e["key"].startswith("pay:") else "FAIL")
    assert e["channel"] == "wx" and e["cls"] == "status"
