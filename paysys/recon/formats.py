"""Statement files -> uniform rows: the three formats a channel sends (contract issue 5, §1).

`parse(fmt, content)` returns the file's transactions as `Row`s, in file order; any malformed
input raises `StatementError` whose message names the line number and the field
("line 7: 应结订单金额: expected a decimal amount, got 'x'").

- `mt940` (the bank): read with the maintained `mt-940` library. The file's layout (which tags,
  in which order, every `:61:` followed by its `:86:`) is checked first, line by line; then the
  library parses every tag, and processors collect each tag's fields in file order (the library
  silently merges a `:61:` it half-understood into the next one, so its transaction list is not
  trusted). The `:86:` details (`/KIND/…/FEE/…/CUR/…/TIME/…/STATUS/…`, continued over several
  lines) are this platform's own sub-format, read here.
- `wechat`: the WeChat Pay "ALL" bill (every field starts with a backtick).
- `alipay`: the Alipay 业务明细 CSV (`#` lines are comments).

Amounts are decimal strings turned into int minor units by splitting on the separator, never
through a float ("12.34" -> 1234, "0,03" -> 3, "-5.00" -> 500 for a refund). Times in the files
are local (UTC+8); a row's `date` is the local date of its own time.
"""

import datetime
import re
from decimal import InvalidOperation
from typing import NamedTuple

import mt940

from paysys.money import CURRENCIES


class Row(NamedTuple):
    key: str          # "pay:<channel_ref>" for a pay, "refund:<ref>" for a refund
    kind: str         # "pay" | "refund"
    ref: str          # our order id (pay) / refund id (refund)
    channel_ref: str
    amount: int       # > 0, minor units
    fee: int          # >= 0
    currency: str
    status: str       # "SUCCESS", or what the file says ("REVERSED", "CLOSED", "FAIL", ...)
    date: str         # the row's own trade date "2026-11-02" (local)


class StatementError(ValueError):
    """A statement file that cannot be read: the message names the line and the field."""


FORMATS = ("mt940", "wechat", "alipay")
# status tokens a file may carry (WeChat 交易状态 / 退款状态, MT940 reversals, Alipay 备注)
STATUSES = frozenset({
    "SUCCESS", "REVERSED", "CLOSED", "FAIL", "FAILED", "PROCESSING", "NOTPAY", "REVOKED",
    "PAYERROR", "USERPAYING", "CHANGE", "REFUNDCLOSE",
})
_CURRENCY = re.compile(r"[A-Z]{3}")
_REF = re.compile(r"[A-Za-z0-9_-]+")


def parse(fmt: str, content: str) -> list[Row]:
    """The rows of statement `content` written in format `fmt` ("mt940", "wechat", "alipay")."""
    reader = _READERS.get(fmt)
    if reader is None:
        raise StatementError(f"line 0: format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(content, str) or not content.strip():
        raise StatementError("line 1: content: the statement file is empty")
    return reader(content)


def row_key(kind: str, ref: str, channel_ref: str) -> str:
    return f"pay:{channel_ref}" if kind == "pay" else f"refund:{ref}"


# -- shared field readers -------------------------------------------------------------------------

def _fail(line: int, field: str, expected: str, got: object) -> StatementError:
    return StatementError(f"line {line}: {field}: expected {expected}, got {got!r}")


def minor_units(text: str, sep: str, line: int, field: str, digits: int = 2) -> int:
    """Decimal string `text` ("-12.34", "0,03") as signed int minor units (`digits` decimals)."""
    body = text[1:] if text.startswith("-") else text
    units, found, frac = body.partition(sep)
    if not (units.isascii() and units.isdigit()) or (
            found and not (frac.isascii() and frac.isdigit() and len(frac) <= digits)):
        raise _fail(line, field, "a decimal amount", text)
    value = int(units) * 10**digits + (int(frac.ljust(digits, "0")) if found else 0)
    return -value if text.startswith("-") else value


def _amount(text: str, sep: str, line: int, field: str, currency: str) -> int:
    """A row's amount: the absolute value of the decimal, which must not be zero."""
    value = abs(minor_units(text, sep, line, field, CURRENCIES.get(currency, 2)))
    if value == 0:
        raise _fail(line, field, "a non-zero amount", text)
    return value


def _fee(text: str, sep: str, line: int, field: str, currency: str) -> int:
    return abs(minor_units(text, sep, line, field, CURRENCIES.get(currency, 2)))


def _currency(text: str, line: int, field: str) -> str:
    if not _CURRENCY.fullmatch(text):
        raise _fail(line, field, "a 3-letter currency code", text)
    return text


def _status(text: str, line: int, field: str) -> str:
    if text not in STATUSES:
        raise _fail(line, field, f"a status ({', '.join(sorted(STATUSES))})", text)
    return text


def _ref(text: str, line: int, field: str) -> str:
    if not _REF.fullmatch(text):
        raise _fail(line, field, "an id (letters, digits)", text)
    return text


def _local_date(text: str, line: int, field: str) -> str:
    """The date of a local time "2026-11-02 09:30:15"."""
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").date().isoformat()
    except ValueError:
        raise _fail(line, field, "a time YYYY-MM-DD HH:MM:SS", text) from None


def _lines(content: str) -> list[str]:
    """The lines of a CSV-like file ("\\r\\n"), trailing blank lines dropped."""
    lines = re.split(r"\r?\n", content)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


# -- mt940 ----------------------------------------------------------------------------------------

_TAG_LINE = re.compile(r":(\d{2}[A-Z]?):")
_DETAIL_LINES = 6            # :86: is at most 6 lines of 65 characters
_DETAIL = re.compile(r"(?:/[A-Z]+/[^/]*)+")
_TAG_FIELDS = {"20": ":20: reference", "25": ":25: account", "28C": ":28C: statement number",
               "60F": ":60F: opening balance", "61": ":61: statement line",
               "86": ":86: details", "62F": ":62F: closing balance"}
_MARKS = {"C": ("pay", None), "D": ("refund", None), "RC": ("pay", "REVERSED"),
          "RD": ("refund", "REVERSED")}


# which tag may follow which (None: the start of the file); the file ends with :62F:
_NEXT = {None: ("20",), "20": ("25",), "25": ("28C",), "28C": ("60F",), "60F": ("61", "62F"),
         "61": ("86",), "86": ("61", "62F"), "62F": ()}


def _mt940_layout(content: str) -> list[tuple[str, int]]:
    """(tag, line number) of every tag, after checking the statement's shape (table `_NEXT`)."""
    tags: list[tuple[str, int]] = []
    continued = 0
    lines = content.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        match = _TAG_LINE.match(line)
        previous = tags[-1][0] if tags else None
        if match:
            tag = match.group(1)
            if tag not in _NEXT[previous]:
                want = " or ".join(f":{t}:" for t in _NEXT[previous]) or "the end of the file"
                raise _fail(number, "tag", want, line)
            tags.append((tag, number))
            continued = 0
        elif previous == "86" and line.strip() and continued < _DETAIL_LINES - 1:
            continued += 1
        else:
            field = ":86: details" if previous == "86" else "tag"
            raise _fail(number, field, "a tag line (:NN:)", line)
    if not tags or tags[-1][0] != "62F":
        raise _fail(len(lines), "tag", "the closing balance :62F: as the last tag",
                    _line_of(content, tags[-1][1]) if tags else "")
    return tags


def _mt940_tags(content: str, tags: list[tuple[str, int]]) -> list[tuple[dict, object]]:
    """(raw fields, parsed result) of every tag, in file order, from the mt940 library."""
    parsed: list[tuple[dict, object]] = []
    raw: list[dict] = []

    def keep(transactions, tag, tag_dict):
        raw.append(dict(tag_dict))   # the fields as read, before the library builds objects
        return tag_dict

    def collect(transactions, tag, tag_dict, result):
        parsed.append((raw[-1], result))
        return result

    processors = {name: [*steps, collect] if name.startswith("post_") else [keep, *steps]
                  for name, steps in mt940.models.Transactions.DEFAULT_PROCESSORS.items()}
    reader = mt940.models.Transactions(processors=processors,
                                       options=mt940.Options(unbounded_details=True))
    try:
        reader.parse(content)
    except (RuntimeError, ValueError, InvalidOperation, KeyError, TypeError) as exc:
        # the tag that failed is the first one not collected
        tag, number = tags[min(len(parsed), len(tags) - 1)]
        field = f":{tag}: amount" if isinstance(exc, InvalidOperation) else _TAG_FIELDS[tag]
        raise _fail(number, field, "a valid MT940 field", _line_of(content, number)) from None
    if len(parsed) != len(tags):
        tag, number = tags[min(len(parsed), len(tags) - 1)]
        raise _fail(number, _TAG_FIELDS[tag], "a tag the MT940 library reads",
                    _line_of(content, number))
    return parsed


def _line_of(content: str, number: int) -> str:
    return content.split("\n")[number - 1].rstrip("\r")


def _details(text: str, number: int) -> dict[str, str]:
    joined = "".join(part.strip("\r") for part in text.split("\n"))
    if not _DETAIL.fullmatch(joined):
        raise _fail(number, ":86: details", "/KEY/value/KEY/value…", joined)
    parts = joined.split("/")[1:]
    return dict(zip(parts[0::2], parts[1::2], strict=True))


def _mt940_time(text: str, number: int) -> str:
    """The date of a local time "YYYYMMDDHHMMSSmmm"."""
    try:
        if len(text) != 17 or not text.isdigit():
            raise ValueError(text)
        return datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S").date().isoformat()
    except ValueError:
        raise _fail(number, ":86: TIME", "a local time YYYYMMDDHHMMSSmmm", text) from None


def _parse_mt940(content: str) -> list[Row]:
    tags = _mt940_layout(content)
    fields = _mt940_tags(content, tags)
    rows: list[Row] = []
    for index, (tag, number) in enumerate(tags):
        if tag != "61":
            continue
        line, (data, result) = _line_of(content, number), fields[index]
        detail_line = tags[index + 1][1]
        details = _details(fields[index + 1][0].get("transaction_details") or "", detail_line)
        mark = data.get("status") or ""
        if data.get("id") != "NTRF" or data.get("extra_details") or mark.upper() not in _MARKS:
            raise _fail(number, ":61: amount", "an amount like 12,34 followed by NTRF", line)
        kind, reversed_ = _MARKS[mark.upper()]
        for name in ("KIND", "FEE", "CUR", "STATUS"):
            if name not in details:
                raise _fail(detail_line, f":86: {name}", f"a /{name}/ field", "nothing")
        if details["KIND"] != kind:
            raise _fail(detail_line, ":86: KIND", f"{kind!r} (mark {mark})", details["KIND"])
        currency = _currency(details["CUR"], detail_line, ":86: CUR")
        status = _status(details["STATUS"], detail_line, ":86: STATUS")
        ref = _ref(data.get("customer_reference") or "", number, ":61: customer reference")
        channel_ref = _ref(data.get("bank_reference") or "", number, ":61: bank reference")
        if "TIME" in details:
            date = _mt940_time(details["TIME"], detail_line)
        else:
            date = result["date"].isoformat()
        rows.append(Row(
            key=row_key(kind, ref, channel_ref), kind=kind, ref=ref, channel_ref=channel_ref,
            amount=_amount(data.get("amount") or "", ",", number, ":61: amount", currency),
            fee=_fee(details["FEE"], ",", detail_line, ":86: FEE", currency),
            currency=currency, status=reversed_ or status, date=date,
        ))
    return rows


# -- wechat ---------------------------------------------------------------------------------------

WECHAT_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
).split(",")
WECHAT_SUMMARY = "总交易单数"


def _parse_wechat(content: str) -> list[Row]:
    lines = _lines(content)
    header = lines[0].lstrip("\ufeff").split(",")
    missing = [name for name in WECHAT_HEADER if name not in header]
    if missing:
        raise _fail(1, "header", f"the WeChat bill columns ({missing[0]} is missing)", lines[0])
    column = {name: header.index(name) for name in WECHAT_HEADER}
    rows: list[Row] = []
    for number, line in enumerate(lines[1:], 2):
        if line.startswith(WECHAT_SUMMARY):
            break
        values = line.split(",")
        if len(values) != len(header):
            raise _fail(number, "columns", f"{len(header)} fields", len(values))
        for name, value in zip(header, values, strict=True):
            if not value.startswith("`"):
                raise _fail(number, name, "a field starting with a backtick", value)
        get = {name: values[column[name]][1:] for name in WECHAT_HEADER}.__getitem__
        rows.append(_wechat_row(get, number))
    return rows


def _wechat_row(get, number: int) -> Row:
    currency = _currency(get("货币种类"), number, "货币种类")
    date = _local_date(get("交易时间"), number, "交易时间")
    trade_status = get("交易状态")
    if trade_status == "REFUND":
        ref = _ref(get("商户退款单号"), number, "商户退款单号")
        channel_ref = _ref(get("微信退款单号"), number, "微信退款单号")
        return Row(row_key("refund", ref, channel_ref), "refund", ref, channel_ref,
                   _amount(get("退款金额"), ".", number, "退款金额", currency),
                   _fee(get("手续费"), ".", number, "手续费", currency),
                   currency, _status(get("退款状态"), number, "退款状态"), date)
    ref = _ref(get("商户订单号"), number, "商户订单号")
    channel_ref = _ref(get("微信订单号"), number, "微信订单号")
    return Row(row_key("pay", ref, channel_ref), "pay", ref, channel_ref,
               _amount(get("应结订单金额"), ".", number, "应结订单金额", currency),
               _fee(get("手续费"), ".", number, "手续费", currency),
               currency, _status(trade_status, number, "交易状态"), date)


# -- alipay ---------------------------------------------------------------------------------------

ALIPAY_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,"
    "服务费（元）,分润（元）,备注"
).split(",")
ALIPAY_TITLE = "#支付宝业务明细查询"
ALIPAY_KINDS = {"交易": "pay", "退款": "refund"}


def _parse_alipay(content: str) -> list[Row]:
    lines = _lines(content)
    if lines[0].lstrip("\ufeff") != ALIPAY_TITLE:
        raise _fail(1, "title", ALIPAY_TITLE, lines[0])
    at = next((i for i, line in enumerate(lines) if not line.startswith("#")), None)
    if at is None:
        raise _fail(len(lines), "header", "the column header line", "nothing")
    header = lines[at].split(",")
    missing = [name for name in ALIPAY_HEADER if name not in header]
    if missing:
        raise _fail(at + 1, "header", f"the Alipay columns ({missing[0]} is missing)", lines[at])
    column = {name: header.index(name) for name in ALIPAY_HEADER}
    rows: list[Row] = []
    for number, line in enumerate(lines[at + 1:], at + 2):
        if line.startswith("#"):
            break
        values = line.split(",")
        if len(values) != len(header):
            raise _fail(number, "columns", f"{len(header)} fields", len(values))
        rows.append(_alipay_row({name: values[column[name]] for name in ALIPAY_HEADER}, number))
    return rows


def _alipay_row(get: dict[str, str], number: int) -> Row:
    kind = ALIPAY_KINDS.get(get["业务类型"])
    if kind is None:
        raise _fail(number, "业务类型", "交易 or 退款", get["业务类型"])
    note = get["备注"]
    if note and not note.startswith("status="):
        raise _fail(number, "备注", "empty or status=<STATUS>", note)
    status = _status(note.removeprefix("status="), number, "备注") if note else "SUCCESS"
    channel_ref = _ref(get["支付宝交易号"], number, "支付宝交易号")
    ref_field = "商户订单号" if kind == "pay" else "退款批次号/请求号"
    ref = _ref(get[ref_field], number, ref_field)
    return Row(row_key(kind, ref, channel_ref), kind, ref, channel_ref,
               _amount(get["订单金额（元）"], ".", number, "订单金额（元）", "CNY"),
               _fee(get["服务费（元）"], ".", number, "服务费（元）", "CNY"),
               "CNY", status, _local_date(get["完成时间"], number, "完成时间"))


_READERS = {"mt940": _parse_mt940, "wechat": _parse_wechat, "alipay": _parse_alipay}
