"""(placeholder, filled by the channel's engineer)"""

from paysys.channels.base import Adapter


class AlipayAdapter(Adapter):
    kind = "alipay"
