"""The channel kinds a scenario may declare: what each serves and how its mock is built.

`KINDS[kind]` is a `Kind`: the products its channels serve (by default all of them), its
statement formats (the first is the default), the function building its mock node from the
scenario, the parser of its `[[channels]] options = {...}` table, and the message a user sends to
pay what paysys answered with a `code_url` (a QR code, a bank page, an approval link). The
scenario parser, the runner and the actors read this table; a new kind is one module here.
"""

from sim.kinds.alipay import ALIPAY
from sim.kinds.bank import BANK
from sim.kinds.base import Kind
from sim.kinds.carrier import CARRIER
from sim.kinds.paypal import PAYPAL
from sim.kinds.unionpay import UNIONPAY
from sim.kinds.wechat import WECHAT

KINDS: dict[str, Kind] = {"bank": BANK, "wechat": WECHAT, "alipay": ALIPAY, "unionpay": UNIONPAY,
                          "carrier": CARRIER, "paypal": PAYPAL}

__all__ = ["KINDS", "Kind"]
