"""Channel adapters: the paysys side of each channel family's wire protocol."""

from paysys.channels.bank import BankAdapter
from paysys.channels.wechat import WeChatAdapter

ADAPTERS = {"bank": BankAdapter, "wechat": WeChatAdapter}
