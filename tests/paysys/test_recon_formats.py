"""paysys/recon/formats.py: the three statement formats of the issue 5 contract, exactly; round
trips through tiny test-only writers; every malformed input names its line and field."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys.recon.formats import FORMATS, Row, StatementError, minor_units, parse

MT940 = "\n".join([
    ":20:STMT-bank-20261102",
    ":25:PLATFORM/CNY",
    ":28C:1/1",
    ":60F:C261102CNY0,00",
    ":61:2611021102C12,34NTRFP0000000042//BT0000000007",
    ":86:/KIND/pay/FEE/0,03/CUR/CNY/TIME/20261102093015123/STATUS/SUCCESS",
    ":61:2611021102D5,00NTRFR0000000003//BR0000000004",
    ":86:/KIND/refund/FEE/0,00/CUR/CNY/TIME/20261102100000000/STATUS/SUCCESS",
    ":62F:C261102CNY7,34",
])

WECHAT = "\r\n".join([
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注",
    "`2026-11-02 09:30:15,`wx8888888888888888,`1900000109,`0,`,`4200000007,`P0000000042,`oU00001,`NATIVE,`SUCCESS,`CFT,`CNY,`12.34,`0.00,`0,`0,`0.00,`0.00,`,`,`goods,`,`0.05,`0.38%,`12.34,`0.00,`",
    "`2026-11-02 10:00:00,`wx8888888888888888,`1900000109,`0,`,`4200000007,`P0000000042,`oU00001,`NATIVE,`REFUND,`CFT,`CNY,`0.00,`0.00,`50000000004,`R0000000003,`5.00,`0.00,`ORIGINAL,`SUCCESS,`goods,`,`0.00,`0.38%,`12.34,`5.00,`",
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
    "`2,`12.34,`5.00,`0.00,`0.05,`24.68,`5.00",
])

ALIPAY = "\r\n".join([
    "#支付宝业务明细查询",
    "#账号：[20880000000000000156]",
    "#起始日期：[2026年11月02日 00:00:00]   终止日期：[2026年11月03日 00:00:00]",
    "#-----------------------------------------业务明细列表----------------------------------------",
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注",
    "4200000007,P0000000042,交易,goods,2026-11-02 09:30:15,2026-11-02 09:30:15,,,,,U00001,12.34,12.34,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.05,0.00,",
    "50000000004,P0000000042,退款,goods,2026-11-02 10:00:00,2026-11-02 10:00:00,,,,,U00001,-5.00,-5.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,R0000000003,0.00,0.00,",
    "#-----------------------------------------业务明细列表结束------------------------------------",
    "#交易合计：1笔，商家实收共12.34元，服务费共0.05元",
    "#退款合计：1笔，商家实收共-5.00元",
    "#导出时间：[2026年11月03日 09:00:00]",
])


def test_mt940_example():
    assert parse("mt940", MT940) == [
        Row("pay:BT0000000007", "pay", "P0000000042", "BT0000000007", 1234, 3, "CNY", "SUCCESS",
            "2026-11-02"),
        Row("refund:R0000000003", "refund", "R0000000003", "BR0000000004", 500, 0, "CNY",
            "SUCCESS", "2026-11-02"),
    ]


def test_wechat_example():
    assert parse("wechat", WECHAT) == [
        Row("pay:4200000007", "pay", "P0000000042", "4200000007", 1234, 5, "CNY", "SUCCESS",
            "2026-11-02"),
        Row("refund:R0000000003", "refund", "R0000000003", "50000000004", 500, 0, "CNY",
            "SUCCESS", "2026-11-02"),
    ]


def test_alipay_example():
    assert parse("alipay", ALIPAY) == [
        Row("pay:4200000007", "pay", "P0000000042", "4200000007", 1234, 5, "CNY", "SUCCESS",
            "2026-11-02"),
        Row("refund:R0000000003", "refund", "R0000000003", "50000000004", 500, 0, "CNY",
            "SUCCESS", "2026-11-02"),
    ]


def test_decimal_strings_become_minor_units_without_floats():
    assert minor_units("12.34", ".", 1, "x") == 1234
    assert minor_units("-5.00", ".", 1, "x") == -500
    assert minor_units("0,03", ",", 1, "x") == 3
    assert minor_units("12,3", ",", 1, "x") == 1230
    assert minor_units("7", ".", 1, "x") == 700
    assert minor_units("123456789012.99", ".", 1, "x") == 12345678901299
    for bad in ("", "-", "1.2.3", "1.234", "1x.00", "12,3x", "+1.00", "1.-2", "１.00", ".5"):
        with pytest.raises(StatementError, match=r"line 1: x: expected a decimal amount"):
            minor_units(bad, ".", 1, "x")


# -- test-only writers ---------------------------------------------------------------------------

def _dec(amount: int, sep: str = ".") -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}{sep}{abs(amount) % 100:02d}"


def write_mt940(rows: list[Row], times: list[str]) -> str:
    lines = [":20:STMT-bank", ":25:PLATFORM/CNY", ":28C:1/1", ":60F:C261102CNY0,00"]
    for row, time in zip(rows, times, strict=True):
        mark = {"pay": "C", "refund": "D"}[row.kind]
        if row.status == "REVERSED":
            mark = "R" + mark
        yymmdd = row.date[2:].replace("-", "")
        lines.append(f":61:{yymmdd}1102{mark}{_dec(row.amount, ',')}NTRF{row.ref}//"
                     f"{row.channel_ref}")
        detail = (f"/KIND/{row.kind}/FEE/{_dec(row.fee, ',')}/CUR/{row.currency}"
                  f"/TIME/{row.date.replace('-', '')}{time}000/STATUS/{row.status}")
        chunks = [detail[i:i + 65] for i in range(0, len(detail), 65)]
        lines.append(":86:" + chunks[0])
        lines.extend(chunks[1:])
    lines.append(":62F:C261102CNY0,00")
    return "\n".join(lines)


def write_wechat(rows: list[Row], times: list[str]) -> str:
    lines = [WECHAT.split("\r\n")[0]]
    for row, time in zip(rows, times, strict=True):
        t = f"{row.date} {time[:2]}:{time[2:4]}:{time[4:6]}"
        if row.kind == "pay":
            fields = [t, "wx1", "19", "0", "", row.channel_ref, row.ref, "oU1", "NATIVE",
                      row.status, "CFT", row.currency, _dec(row.amount), "0.00", "0", "0", "0.00",
                      "0.00", "", "", "goods", "", _dec(row.fee), "0.38%", _dec(row.amount),
                      "0.00", ""]
        else:
            fields = [t, "wx1", "19", "0", "", "42", "P1", "oU1", "NATIVE", "REFUND", "CFT",
                      row.currency, "0.00", "0.00", row.channel_ref, row.ref, _dec(row.amount),
                      "0.00", "ORIGINAL", row.status, "goods", "", _dec(row.fee), "0.38%", "1.00",
                      _dec(row.amount), ""]
        lines.append(",".join("`" + f for f in fields))
    lines += WECHAT.split("\r\n")[3:]
    return "\r\n".join(lines)


def write_alipay(rows: list[Row], times: list[str]) -> str:
    head = ALIPAY.split("\r\n")
    lines = head[:5]
    for row, time in zip(rows, times, strict=True):
        t = f"{row.date} {time[:2]}:{time[2:4]}:{time[4:6]}"
        note = "" if row.status == "SUCCESS" else f"status={row.status}"
        if row.kind == "pay":
            fields = [row.channel_ref, row.ref, "交易", "goods", t, t, "", "", "", "", "U1",
                      _dec(row.amount), _dec(row.amount), "0.00", "0.00", "0.00", "0.00", "0.00",
                      "", "0.00", "0.00", "", _dec(-row.fee), "0.00", note]
        else:
            fields = [row.channel_ref, "P1", "退款", "goods", t, t, "", "", "", "", "U1",
                      _dec(-row.amount), _dec(-row.amount), "0.00", "0.00", "0.00", "0.00",
                      "0.00", "", "0.00", "0.00", row.ref, "0.00", "0.00", note]
        lines.append(",".join(fields))
    lines += head[7:]
    return "\r\n".join(lines)


WRITERS = {"mt940": write_mt940, "wechat": write_wechat, "alipay": write_alipay}
STATUS = {"mt940": ("SUCCESS", "REVERSED"), "wechat": ("SUCCESS", "CLOSED", "FAIL"),
          "alipay": ("SUCCESS", "CLOSED")}


@st.composite
def statement(draw, fmt: str):
    n = draw(st.integers(0, 8))
    rows, times = [], []
    for i in range(n):
        kind = draw(st.sampled_from(("pay", "refund")))
        ref = f"{'P' if kind == 'pay' else 'R'}{i:010d}"
        channel_ref = f"T{draw(st.integers(0, 10**9)):010d}"
        currency = "CNY" if fmt == "alipay" else draw(st.sampled_from(("CNY", "USD")))
        fee = 0 if kind == "refund" and fmt != "mt940" else draw(st.integers(0, 10**4))
        key = f"pay:{channel_ref}" if kind == "pay" else f"refund:{ref}"
        date = f"2026-{draw(st.integers(1, 12)):02d}-{draw(st.integers(1, 28)):02d}"
        rows.append(Row(key, kind, ref, channel_ref, draw(st.integers(1, 10**12)), fee, currency,
                        draw(st.sampled_from(STATUS[fmt])), date))
        times.append(f"{draw(st.integers(0, 23)):02d}{draw(st.integers(0, 59)):02d}"
                     f"{draw(st.integers(0, 59)):02d}")
    return rows, times


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(fmt, data):
    rows, times = data.draw(statement(fmt))
    assert parse(fmt, WRITERS[fmt](rows, times)) == rows


def test_mt940_details_continue_over_lines_and_value_date_without_time():
    content = MT940.replace(
        ":86:/KIND/pay/FEE/0,03/CUR/CNY/TIME/20261102093015123/STATUS/SUCCESS",
        ":86:/KIND/pay/FEE/0,03/CUR/CNY/STATUS/SUCC\nESS")
    content = content.replace(":61:2611021102C12,34", ":61:2611011102C12,34")
    (pay, _) = parse("mt940", content)
    assert (pay.status, pay.date, pay.fee) == ("SUCCESS", "2026-11-01", 3)


def test_mt940_reversal_marks():
    content = MT940.replace("1102C12,34", "1102RC12,34").replace("1102D5,00", "1102RD5,00")
    assert [r.status for r in parse("mt940", content)] == ["REVERSED", "REVERSED"]


def _swap(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


MALFORMED = [
    # (format, content, line, field)
    ("mt940", _swap(MT940, "C12,34NTRF", "C12,3xNTRF"), 5, ":61: amount"),
    ("mt940", _swap(MT940, "C12,34NTRF", "C1x.00NTRF"), 5, ":61: amount"),
    ("mt940", _swap(MT940, "C12,34NTRF", "C12,,34NTRF"), 5, ":61: amount"),
    ("mt940", _swap(MT940, "D5,00NTRF", "D5,0,0NTRF"), 7, ":61: amount"),
    ("mt940", _swap(MT940, ":61:261102", ":61:261340"), 5, ":61: statement line"),
    ("mt940", _swap(MT940, ":60F:C261102CNY0,00", ":60F:C2611CNY0,00"), 4, ":60F: opening balance"),
    ("mt940", _swap(MT940, ":20:STMT", ":21:STMT"), 1, "tag"),
    ("mt940", "hello\nworld", 1, "tag"),
    ("mt940", _swap(MT940, "\n:86:/KIND/refund", "\n:62F:C1\n:86:/KIND/refund"), 8, "tag"),
    ("mt940", MT940.rsplit("\n", 1)[0], 8, "tag"),
    ("mt940", _swap(MT940, "/FEE/0,03", "/FEE/0.03"), 6, ":86: FEE"),
    ("mt940", _swap(MT940, "/CUR/CNY/TIME/2026110209", "/CUR/CN/TIME/2026110209"), 6, ":86: CUR"),
    ("mt940", _swap(MT940, "/TIME/20261102093015123", "/TIME/20261302093015123"), 6,
     ":86: TIME"),
    ("mt940", _swap(MT940, "STATUS/SUCCESS\n:61:", "STATUS/GREAT\n:61:"), 6, ":86: STATUS"),
    ("mt940", _swap(MT940, "/KIND/pay/", "/KIND/refund/"), 6, ":86: KIND"),
    ("mt940", _swap(MT940, "/KIND/pay/FEE/0,03", "/FEE/0,03"), 6, ":86: KIND"),
    ("mt940", _swap(MT940, "/KIND/pay/", "KIND pay "), 6, ":86: details"),
    ("wechat", _swap(WECHAT, "`12.34,`0.00,`0,", "`x,`0.00,`0,"), 2, "应结订单金额"),
    ("wechat", _swap(WECHAT, "`5.00,`0.00,`ORIGINAL", "`5..00,`0.00,`ORIGINAL"), 3, "退款金额"),
    ("wechat", _swap(WECHAT, "`2026-11-02 09:30:15", "`2026-11-32 09:30:15"), 2, "交易时间"),
    ("wechat", _swap(WECHAT, "`NATIVE,`SUCCESS", "`NATIVE,`OK"), 2, "交易状态"),
    ("wechat", _swap(WECHAT, "`ORIGINAL,`SUCCESS", "`ORIGINAL,`MAYBE"), 3, "退款状态"),
    ("wechat", _swap(WECHAT, "`0.05,`0.38%", "`-,`0.38%"), 2, "手续费"),
    ("wechat", _swap(WECHAT, "`CFT,`CNY,`12.34", "`CFT,`cny,`12.34"), 2, "货币种类"),
    ("wechat", _swap(WECHAT, ",微信订单号,", ",订单号,"), 1, "header"),
    ("wechat", _swap(WECHAT, "`goods,`,`0.05", "`goods,`0.05"), 2, "columns"),
    ("wechat", _swap(WECHAT, "`4200000007,`P0000000042,`oU00001,`NATIVE,`SUCCESS",
                     "4200000007,`P0000000042,`oU00001,`NATIVE,`SUCCESS"), 2, "微信订单号"),
    ("alipay", _swap(ALIPAY, "U00001,12.34", "U00001,12.3.4"), 6, "订单金额（元）"),
    ("alipay", _swap(ALIPAY, "U00001,-5.00", "U00001,0.00"), 7, "订单金额（元）"),
    ("alipay", _swap(ALIPAY, "09:30:15,,", "09:30,,"), 6, "完成时间"),
    ("alipay", _swap(ALIPAY, ",交易,", ",转账,"), 6, "业务类型"),
    ("alipay", _swap(ALIPAY, "-0.05,0.00,", "-0.05,0.00,status=BAD"), 6, "备注"),
    ("alipay", _swap(ALIPAY, "-0.05,0.00,", "-0.05,0.00,note"), 6, "备注"),
    ("alipay", _swap(ALIPAY, "-0.05,0.00,", "-0.0x,0.00,"), 6, "服务费（元）"),
    ("alipay", _swap(ALIPAY, "0.00,R0000000003,", "0.00,,"), 7, "退款批次号/请求号"),
    ("alipay", _swap(ALIPAY, "#支付宝业务明细查询", "#账单"), 1, "title"),
    ("alipay", _swap(ALIPAY, ",服务费（元）,", ",费用,"), 5, "header"),
    ("alipay", _swap(ALIPAY, ",goods,2026-11-02 10", ",goods,x,2026-11-02 10"), 7, "columns"),
]


@pytest.mark.parametrize(("fmt", "content", "line", "field"), MALFORMED)
def test_malformed_names_line_and_field(fmt, content, line, field):
    with pytest.raises(StatementError) as info:
        parse(fmt, content)
    assert str(info.value).startswith(f"line {line}: {field}:"), str(info.value)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("content", ["", "  \r\n", None])
def test_empty_content(fmt, content):
    with pytest.raises(StatementError, match=r"^line 1: content: the statement file is empty"):
        parse(fmt, content)


def test_unknown_format_names_the_accepted_ones():
    with pytest.raises(StatementError, match="format: expected one of mt940, wechat, alipay"):
        parse("csv", "a,b")


def test_statement_error_is_a_value_error():
    assert issubclass(StatementError, ValueError)


def test_no_rows():
    empty = "\n".join([*MT940.split("\n")[:4], MT940.split("\n")[-1]])
    assert parse("mt940", empty) == []
    wechat = WECHAT.split("\r\n")
    assert parse("wechat", "\r\n".join([wechat[0], *wechat[3:]])) == []
    alipay = ALIPAY.split("\r\n")
    assert parse("alipay", "\r\n".join([*alipay[:5], *alipay[7:]])) == []
