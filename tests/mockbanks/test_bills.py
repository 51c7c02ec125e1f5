"""The statement writers (mockbanks/bills.py): each format written for known rows, exactly."""

from datetime import UTC, datetime

import mt940
import pytest

from mockbanks.bills import Line, money, write, write_malformed


def at(text: str) -> int:
    """The instant of local (UTC+8) wall time `text` ("2026-11-02 09:30:15.123")."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000) - 8 * 3600_000


PAY = Line("pay:4200000007", "pay", "P0000000042", "4200000007", 1234, 5, "CNY", "SUCCESS",
           at("2026-11-02 09:30:15.123"), user="U00001")
REFUND = Line("refund:R0000000003", "refund", "R0000000003", "50000000004", 500, 0, "CNY",
              "SUCCESS", at("2026-11-02 10:00:00"), order_ref="P0000000042",
              orig_ref="4200000007", user="U00001", order_amount=1234)

MT940 = """\
:20:STMT-bank-20261102
:25:PLATFORM/CNY
:28C:1/1
:60F:C261102CNY0,00
:61:2611021102C12,34NTRFP0000000042//4200000007
:86:/KIND/pay/FEE/0,05/CUR/CNY/TIME/20261102093015123/STATUS/SUCCESS
:61:2611021102D5,00NTRFR0000000003//50000000004
:86:/KIND/refund/FEE/0,00/CUR/CNY/TIME/20261102100000000
/STATUS/SUCCESS
:62F:C261102CNY7,34"""

WECHAT = [
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注",
    "`2026-11-02 09:30:15,`wx8888888888888888,`1900000109,`0,`,`4200000007,`P0000000042,"
    "`oU00001,`NATIVE,`SUCCESS,`CFT,`CNY,`12.34,`0.00,`0,`0,`0.00,`0.00,`,`,`goods,`,`0.05,"
    "`0.38%,`12.34,`0.00,`",
    "`2026-11-02 10:00:00,`wx8888888888888888,`1900000109,`0,`,`4200000007,`P0000000042,"
    "`oU00001,`NATIVE,`REFUND,`CFT,`CNY,`0.00,`0.00,`50000000004,`R0000000003,`5.00,`0.00,"
    "`ORIGINAL,`SUCCESS,`goods,`,`0.00,`0.38%,`12.34,`5.00,`",
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
    "`2,`12.34,`5.00,`0.00,`0.05,`24.68,`5.00",
]

ALIPAY = [
    "#支付宝业务明细查询",
    "#账号：[20880000000000000156]",
    "#起始日期：[2026年11月02日 00:00:00]   终止日期：[2026年11月03日 00:00:00]",
    "#-----------------------------------------业务明细列表----------------------------------------",
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注",
    "4200000007,P0000000042,交易,goods,2026-11-02 09:30:15,2026-11-02 09:30:15,,,,,U00001,12.34,"
    "12.34,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.05,0.00,",
    "50000000004,P0000000042,退款,goods,2026-11-02 10:00:00,2026-11-02 10:00:00,,,,,U00001,-5.00,"
    "-5.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,R0000000003,0.00,0.00,",
    "#-----------------------------------------业务明细列表结束------------------------------------",
    "#交易合计：1笔，商家实收共12.34元，服务费共0.05元",
    "#退款合计：1笔，商家实收共-5.00元",
    "#导出时间：[2026年11月03日 09:00:00]",
]


def parse940(text: str) -> list[dict]:
    statement = mt940.models.Transactions()
    statement.parse(text)
    return [t.data for t in statement]


def test_money_is_two_decimals_of_minor_units() -> None:
    assert [money(1234), money(-500), money(0), money(7, ",")] == ["12.34", "-5.00", "0.00",
                                                                  "0,07"]
    with pytest.raises(ValueError, match="amount: expected an integer"):
        money(12.34)


def test_mt940_exact_text_and_the_library_reads_it() -> None:
    text = write("mt940", "bank", "2026-11-02", [PAY, REFUND])
    assert text == MT940
    pay, refund = parse940(text)
    assert (pay["status"], str(pay["amount"].amount), pay["customer_reference"],
            pay["bank_reference"]) == ("C", "12.34", "P0000000042", "4200000007")
    assert refund["status"] == "D" and refund["customer_reference"] == "R0000000003"
    assert refund["transaction_details"].replace("\n", "") == (
        "/KIND/refund/FEE/0,00/CUR/CNY/TIME/20261102100000000/STATUS/SUCCESS")


def test_mt940_marks_reversals_value_dates_and_foreign_currency() -> None:
    moved = PAY._replace(at_ms=at("2026-11-01 23:59:59.999"))        # a row of the day before
    reversed_refund = REFUND._replace(status="REVERSED", currency="USD")
    text = write("mt940", "bank", "2026-11-02", [moved, reversed_refund])
    lines = text.split("\n")
    assert lines[4] == ":61:2611011102C12,34NTRFP0000000042//4200000007"
    assert lines[6].startswith(":61:2611021102RD5,00NTRF")
    assert "/CUR/USD" in lines[7] and lines[8] == "/STATUS/REVERSED"
    assert lines[-1] == ":62F:C261102CNY17,34"             # a reversed debit counts as a credit
    rows = parse940(text)
    assert [str(r["date"]) for r in rows] == ["2026-11-01", "2026-11-02"]
    assert all(str(r["entry_date"]) == "2026-11-02" for r in rows)


def test_mt940_details_lines_hold_65_characters_and_whole_segments() -> None:
    long = PAY._replace(kind="refund", status="REVERSED", fee=123_456_789)
    text = write("mt940", "bank", "2026-11-02", [long])
    body = text.split("\n")[5:-1]
    assert body[0].startswith(":86:")
    assert all(len(line.removeprefix(":86:")) <= 65 for line in body)
    assert all(line.removeprefix(":86:").startswith("/") for line in body)
    assert "".join(line.removeprefix(":86:") for line in body) == (
        "/KIND/refund/FEE/1234567,89/CUR/CNY/TIME/20261102093015123/STATUS/REVERSED")


def test_an_empty_day_is_a_valid_file_in_every_format() -> None:
    assert write("mt940", "bank", "2026-11-02", []).split("\n")[3:] == [
        ":60F:C261102CNY0,00", ":62F:C261102CNY0,00"]
    assert parse940(write("mt940", "bank", "2026-11-02", [])) == []
    assert write("wechat", "wx", "2026-11-02", []).split("\r\n")[1:] == [
        WECHAT[3], "`0,`0.00,`0.00,`0.00,`0.00,`0.00,`0.00"]
    alipay = write("alipay", "ali", "2026-11-02", []).split("\r\n")
    assert alipay[5] == ALIPAY[7] and alipay[6] == "#交易合计：0笔，商家实收共0.00元，服务费共0.00元"


def test_wechat_bill_exact_text() -> None:
    text = write("wechat", "wx", "2026-11-02", [PAY, REFUND], rate_bp=38)
    assert text.split("\r\n") == WECHAT
    assert "\n" not in text.replace("\r\n", "")


def test_wechat_bill_status_faults_and_currency() -> None:
    text = write("wechat", "wx", "2026-11-02",
                 [PAY._replace(status="CLOSED", currency="USD"), REFUND._replace(status="FAIL")])
    pay, refund = (line.split(",") for line in text.split("\r\n")[1:3])
    assert (pay[9], pay[11]) == ("`CLOSED", "`USD")
    assert (refund[9], refund[19]) == ("`REFUND", "`FAIL")


def test_alipay_exact_text_and_status_remark() -> None:
    text = write("alipay", "ali", "2026-11-02", [PAY, REFUND])
    assert text.split("\r\n") == ALIPAY
    closed = write("alipay", "ali", "2026-11-02", [PAY._replace(status="CLOSED")],
                   exported_ms=at("2026-11-03 15:00:00"))
    lines = closed.split("\r\n")
    assert lines[5].endswith(",-0.05,0.00,status=CLOSED")
    assert lines[-1] == "#导出时间：[2026年11月03日 15:00:00]"


@pytest.mark.parametrize("fmt, sep, line, true, broken", [
    ("mt940", "\n", 5, "12,34", ":61:2611021102C12,3xNTRFP0000000042//4200000007"),
    ("wechat", "\r\n", 2, "12.34", None),
    ("alipay", "\r\n", 6, "12.34", None),
])
def test_malformed_breaks_exactly_the_first_amount(fmt, sep, line, true, broken) -> None:
    good = write(fmt, "c", "2026-11-02", [PAY, REFUND])
    bad, detail = write_malformed(fmt, "c", "2026-11-02", [PAY, REFUND])
    assert detail == {"field": "amount", "line": line, "true": true, "file": true[:-1] + "x"}
    diff = [i for i, (a, b) in enumerate(zip(good.split(sep), bad.split(sep), strict=True))
            if a != b]
    assert diff == [line - 1]
    assert bad.split(sep)[line - 1] == (broken or good.split(sep)[line - 1].replace(
        true, true[:-1] + "x", 1))
    with pytest.raises(ValueError, match="rows: a malformed file needs at least one row"):
        write_malformed(fmt, "c", "2026-11-02", [])


def test_malformed_alipay_refund_breaks_the_negative_amount() -> None:
    _, detail = write_malformed("alipay", "c", "2026-11-02", [REFUND])
    assert detail == {"field": "amount", "line": 6, "true": "-5.00", "file": "-5.0x"}


def test_bad_format_or_date_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="fmt: expected one of mt940, wechat, alipay"):
        write("csv", "c", "2026-11-02", [])
    with pytest.raises(ValueError, match="date: expected 'YYYY-MM-DD'"):
        write("mt940", "c", "20261102", [])
    with pytest.raises(ValueError, match="date: expected 'YYYY-MM-DD'"):
        write("mt940", "c", "2026-13-02", [])
