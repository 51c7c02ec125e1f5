"""(placeholder, filled by the channel's engineer)"""

from paysys.channels.base import Adapter


class CarrierAdapter(Adapter):
    kind = "carrier"
