"""Channel adapters: the paysys side of each channel family's wire protocol."""

from paysys.channels.alipay import AlipayAdapter
from paysys.channels.bank import BankAdapter
from paysys.channels.carrier import CarrierAdapter
from paysys.channels.paypal import PayPalAdapter
from paysys.channels.unionpay import UnionPayAdapter
from paysys.channels.wechat import WeChatAdapter

ADAPTERS = {"bank": BankAdapter, "wechat": WeChatAdapter, "alipay": AlipayAdapter,
            "unionpay": UnionPayAdapter, "carrier": CarrierAdapter, "paypal": PayPalAdapter}
