"""(placeholder, filled by the channel's engineer)"""

from sim.kinds.base import Kind


def build(b):
    raise NotImplementedError("the carrier kind is being built")


CARRIER = Kind(products=("carrier",), formats=("alipay",), build=build)
