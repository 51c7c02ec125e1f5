"""The mocks' statement writers and paysys's parsers agree on every format: whatever rows a
channel writes (payments, refunds, reversals, another currency, rows of the previous day), paysys
reads back exactly those rows — and a malformed copy is refused naming its line. The two sides
share no code (mockbanks and paysys may not import each other): only the file formats."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockbanks.bills import Line, write, write_malformed
from paysys.recon.formats import StatementError, parse

TZ = 8 * 3_600_000
DATE = "2026-11-03"
DAY_START = int(dt.datetime(2026, 11, 3, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
                * 1000)
DAY_MS = 86_400_000

STATUS = {"mt940": ("SUCCESS", "REVERSED"), "wechat": ("SUCCESS", "CLOSED"),
          "alipay": ("SUCCESS", "CLOSED")}
CURRENCIES = {"mt940": ("CNY", "USD"), "wechat": ("CNY", "HKD"), "alipay": ("CNY",)}


@st.composite
def rows(draw, fmt: str) -> list[Line]:
    out, n = [], draw(st.integers(0, 8))
    for i in range(n):
        kind = draw(st.sampled_from(("pay", "refund")))
        status = draw(st.sampled_from(STATUS[fmt]))
        if fmt == "wechat" and kind == "refund" and status != "SUCCESS":
            status = "FAIL"
        # a row of this day, or (a channel's mistake) of the day before
        at = DAY_START + draw(st.integers(-DAY_MS // 2, DAY_MS - 1000)) // 1000 * 1000
        ref = f"P{i:010d}" if kind == "pay" else f"R{i:010d}"
        channel_ref = f"BT{i:08d}" if kind == "pay" else f"BR{i:08d}"
        out.append(Line(key=f"pay:{channel_ref}" if kind == "pay" else f"refund:{ref}",
                        kind=kind, ref=ref, channel_ref=channel_ref,
                        amount=draw(st.integers(1, 10**9)),
                        fee=0 if kind == "refund" else draw(st.integers(0, 10**5)),
                        currency=draw(st.sampled_from(CURRENCIES[fmt])), status=status, at_ms=at,
                        order_ref=f"P{i:010d}" if kind == "refund" else ""))
    return out


def expected(line: Line) -> tuple:
    date = dt.datetime.fromtimestamp((line.at_ms + TZ) / 1000, dt.UTC).date().isoformat()
    return (line.key, line.kind, line.ref, line.channel_ref, line.amount, line.fee, line.currency,
            line.status, date)


@pytest.mark.parametrize("fmt", ["mt940", "wechat", "alipay"])
def test_paysys_reads_back_exactly_what_the_channel_wrote(fmt):
    @settings(max_examples=60, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(rows(fmt))
    def check(lines):
        text = write(fmt, "bank", DATE, lines)
        got = [tuple(r) for r in parse(fmt, text)]
        assert sorted(got) == sorted(expected(line) for line in lines)

    check()


@pytest.mark.parametrize("fmt", ["mt940", "wechat", "alipay"])
def test_a_malformed_copy_is_refused_naming_the_broken_line(fmt):
    lines = [Line("pay:BT1", "pay", "P0000000001", "BT1", 1234, 3, "CNY", "SUCCESS",
                  DAY_START + 3_600_000)]
    text, detail = write_malformed(fmt, "bank", DATE, lines)
    with pytest.raises(StatementError, match=rf"^line {detail['line']}: "):
        parse(fmt, text)
