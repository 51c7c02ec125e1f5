"""(placeholder, filled by the channel's engineer)"""

from paysys.channels.base import Adapter


class PayPalAdapter(Adapter):
    kind = "paypal"
