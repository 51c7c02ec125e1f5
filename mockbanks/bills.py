"""Statement files as the channels write them: MT940 (the bank), the WeChat bill, the Alipay CSV.

Owns `Line` (one row of a statement, before formatting) and the three writers of the issue-5
contract (/work/briefs/issue5.md section 1, documented in docs/protocol.md), pure functions of
their arguments:

- `write(fmt, channel, date, rows, ...) -> str`: the file of day `date` ("2026-11-02") listing
  `rows` in the order given (the caller sorts them by time, then channel_ref).
- `write_malformed(...) -> (str, detail)`: the same file whose first row's amount is broken
  (its last digit replaced by "x": "12,34" -> "12,3x"), and what was broken (line number, the
  true and the written text).

Amounts are integer minor units with 2 decimals ("12.34" = 1234); nothing here is a float.
Times are rendered in the channel's local zone (`tz_offset_ms`, UTC+8 by default).
"""

from collections.abc import Callable, Sequence
from datetime import date as _date
from datetime import datetime, timedelta
from typing import NamedTuple

FORMATS = ("mt940", "wechat", "alipay")
TZ_MS = 8 * 3600 * 1000
READY_MS = 9 * 3600 * 1000
MT940_DETAILS_WIDTH = 65          # an MT940 :86: line holds at most 65 characters
WX_APPID, WX_MCH_ID = "wx8888888888888888", "1900000109"
ALIPAY_ACCOUNT = "20880000000000000156"
WX_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
             "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
             "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
             "费率备注")
WX_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,"
                 "终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,"
                 "支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
                 "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")
ALIPAY_BEGIN = "#" + "-" * 41 + "业务明细列表" + "-" * 40
ALIPAY_END = "#" + "-" * 41 + "业务明细列表结束" + "-" * 36


class Line(NamedTuple):
    """One row of a statement. `key` is "pay:<channel_ref>" or "refund:<ref>"; `at_ms` is the
    row's own time (its trade date is the local day of it). For a refund, `order_ref` is the
    order, `orig_ref` the channel's id of the pay and `order_amount` the order's amount (the
    WeChat and Alipay layouts print them); "" / 0 mean: the row's own ref / channel_ref / amount."""

    key: str
    kind: str
    ref: str
    channel_ref: str
    amount: int
    fee: int
    currency: str
    status: str
    at_ms: int
    order_ref: str = ""
    orig_ref: str = ""
    user: str = ""
    order_amount: int = 0


def money(amount: int, sep: str = ".") -> str:
    """Minor units as a 2-decimal string: 1234 -> "12.34", -500 -> "-5.00", 0 -> "0.00"."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount: expected an integer of minor units, got {amount!r}")
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}{sep}{abs(amount) % 100:02d}"


def local_time(at_ms: int, tz_offset_ms: int = TZ_MS) -> datetime:
    """The local wall-clock time of the absolute instant `at_ms` (a naive datetime)."""
    return datetime(1970, 1, 1) + timedelta(milliseconds=at_ms + tz_offset_ms)


def parse_date(date: str) -> _date:
    if not isinstance(date, str) or len(date) != 10:
        raise ValueError(f"date: expected 'YYYY-MM-DD', got {date!r}")
    try:
        return _date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"date: expected 'YYYY-MM-DD', got {date!r}") from None


def _break(text: str) -> str:
    return text[:-1] + "x"


def _keep(text: str) -> str:
    return text


# -- MT940 -----------------------------------------------------------------------------------
def _details(fields: Sequence[tuple[str, str]]) -> list[str]:
    """The :86: lines: `/KEY/value` segments packed into lines of at most 65 characters (a
    segment is never cut; continuation lines carry no tag)."""
    lines = [""]
    for key, value in fields:
        segment = f"/{key}/{value}"
        if lines[-1] and len(lines[-1]) + len(segment) > MT940_DETAILS_WIDTH:
            lines.append("")
        lines[-1] += segment
    return [":86:" + lines[0], *lines[1:]]


def _mt940(channel: str, day: _date, rows: Sequence[Line], currency: str, tz: int,
           mangle: Callable[[str], str]) -> list[str]:
    yymmdd, mmdd = f"{day:%y%m%d}", f"{day:%m%d}"
    out = [f":20:STMT-{channel}-{day:%Y%m%d}", f":25:PLATFORM/{currency}", ":28C:1/1",
           f":60F:C{yymmdd}{currency}0,00"]
    total = 0
    for i, r in enumerate(rows):
        mark = ("C" if r.kind == "pay" else "D")
        if r.status != "SUCCESS":
            mark = "R" + mark           # a reversal: RC takes a credit back, RD a debit
        total += r.amount if mark in ("C", "RD") else -r.amount
        t = local_time(r.at_ms, tz)
        amount = money(r.amount, ",")
        if i == 0:
            amount = mangle(amount)
        out.append(f":61:{t:%y%m%d}{mmdd}{mark}{amount}NTRF{r.ref}//{r.channel_ref}")
        stamp = f"{t:%Y%m%d%H%M%S}{t.microsecond // 1000:03d}"
        out += _details((("KIND", r.kind), ("FEE", money(r.fee, ",")), ("CUR", r.currency),
                         ("TIME", stamp), ("STATUS", r.status)))
    out.append(f":62F:{'C' if total >= 0 else 'D'}{yymmdd}{currency}{money(abs(total), ',')}")
    return out


# -- WeChat bill -----------------------------------------------------------------------------
def _wechat(rows: Sequence[Line], tz: int, rate_bp: int, mangle: Callable[[str], str]) -> list[str]:
    rate = f"{rate_bp // 100}.{rate_bp % 100:02d}%"
    out = [WX_HEADER]
    settled = refunded = fees = ordered = asked = 0
    for i, r in enumerate(rows):
        t = f"{local_time(r.at_ms, tz):%Y-%m-%d %H:%M:%S}"
        amount = money(r.amount)
        if i == 0:
            amount = mangle(amount)
        order_amount = r.order_amount or r.amount
        user = "o" + r.user
        if r.kind == "pay":
            fields = [t, WX_APPID, WX_MCH_ID, "0", "", r.channel_ref, r.ref, user, "NATIVE",
                      r.status, "CFT", r.currency, amount, "0.00", "0", "0", "0.00", "0.00", "",
                      "", "goods", "", money(r.fee), rate, money(order_amount), "0.00", ""]
            settled += r.amount
            ordered += order_amount
        else:
            fields = [t, WX_APPID, WX_MCH_ID, "0", "", r.orig_ref or r.channel_ref,
                      r.order_ref or r.ref, user, "NATIVE", "REFUND", "CFT", r.currency, "0.00",
                      "0.00", r.channel_ref, r.ref, amount, "0.00", "ORIGINAL", r.status, "goods",
                      "", money(r.fee), rate, money(order_amount), money(r.amount), ""]
            refunded += r.amount
            asked += r.amount
            ordered += order_amount
        fees += r.fee
        out.append(",".join("`" + f for f in fields))
    out.append(WX_SUMMARY)
    totals = [str(len(rows)), money(settled), money(refunded), "0.00", money(fees),
              money(ordered), money(asked)]
    out.append(",".join("`" + f for f in totals))
    return out


# -- Alipay CSV ------------------------------------------------------------------------------
def _alipay(day: _date, rows: Sequence[Line], tz: int, exported_ms: int,
            mangle: Callable[[str], str]) -> list[str]:
    out = ["#支付宝业务明细查询", f"#账号：[{ALIPAY_ACCOUNT}]",
           f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   "
           f"终止日期：[{day + timedelta(days=1):%Y年%m月%d日} 00:00:00]", ALIPAY_BEGIN, ALIPAY_HEADER]
    pays = refunds = paid = back = fees = 0
    for i, r in enumerate(rows):
        t = f"{local_time(r.at_ms, tz):%Y-%m-%d %H:%M:%S}"
        remark = "" if r.status == "SUCCESS" else f"status={r.status}"
        if r.kind == "pay":
            amount, order_ref, batch, fee = money(r.amount), r.ref, "", money(-r.fee)
            pays, paid, fees = pays + 1, paid + r.amount, fees + r.fee
        else:
            amount, order_ref, batch, fee = money(-r.amount), r.order_ref or r.ref, r.ref, "0.00"
            refunds, back = refunds + 1, back + r.amount
        written = mangle(amount) if i == 0 else amount
        out.append(",".join([r.channel_ref, order_ref, "交易" if r.kind == "pay" else "退款",
                             "goods", t, t, "", "", "", "", r.user, written, amount, "0.00",
                             "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", batch, fee,
                             "0.00", remark]))
    out += [ALIPAY_END, f"#交易合计：{pays}笔，商家实收共{money(paid)}元，服务费共{money(fees)}元",
            f"#退款合计：{refunds}笔，商家实收共{money(-back)}元",
            f"#导出时间：[{local_time(exported_ms, tz):%Y年%m月%d日 %H:%M:%S}]"]
    return out


def _lines(fmt: str, channel: str, date: str, rows: Sequence[Line], currency: str, tz: int,
           rate_bp: int, exported_ms: int | None, mangle: Callable[[str], str]) -> list[str]:
    day = parse_date(date)
    if fmt == "mt940":
        return _mt940(channel, day, rows, currency, tz, mangle)
    if fmt == "wechat":
        return _wechat(rows, tz, rate_bp, mangle)
    if fmt == "alipay":
        if exported_ms is None:     # the file's normal ready time: 09:00 local the next day
            exported_ms = (day.toordinal() - _date(1970, 1, 1).toordinal() + 1) * 86_400_000 \
                - tz + READY_MS
        return _alipay(day, rows, tz, exported_ms, mangle)
    raise ValueError(f"fmt: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def _join(fmt: str, lines: list[str]) -> str:
    return ("\n" if fmt == "mt940" else "\r\n").join(lines)


def write(fmt: str, channel: str, date: str, rows: Sequence[Line], *, currency: str = "CNY",
          tz_offset_ms: int = TZ_MS, rate_bp: int = 0, exported_ms: int | None = None) -> str:
    """The statement file of `channel` for local day `date` in format `fmt`, listing `rows`.
    `currency` is the account's (MT940 :25:/:60F:/:62F:), `rate_bp` the fee rate the WeChat bill
    prints, `exported_ms` the Alipay export time (default: 09:00 local the next day)."""
    return _join(fmt, _lines(fmt, channel, date, rows, currency, tz_offset_ms, rate_bp,
                             exported_ms, _keep))


def write_malformed(fmt: str, channel: str, date: str, rows: Sequence[Line], *,
                    currency: str = "CNY", tz_offset_ms: int = TZ_MS, rate_bp: int = 0,
                    exported_ms: int | None = None) -> tuple[str, dict]:
    """`write` with the first row's amount broken; returns the text and
    {"field": "amount", "line": <1-based line number>, "true": "12,34", "file": "12,3x"}."""
    if not rows:
        raise ValueError("rows: a malformed file needs at least one row to break")
    args = (fmt, channel, date, rows, currency, tz_offset_ms, rate_bp, exported_ms)
    good, bad = _lines(*args, _keep), _lines(*args, _break)
    n = next(i for i, (a, b) in enumerate(zip(good, bad, strict=True)) if a != b)
    first = rows[0]
    true = money(first.amount, "," if fmt == "mt940" else ".")
    if fmt == "alipay" and first.kind == "refund":
        true = money(-first.amount)
    return _join(fmt, bad), {"field": "amount", "line": n + 1, "true": true,
                             "file": _break(true)}
