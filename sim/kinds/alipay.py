"""(placeholder, filled by the channel's engineer)"""

from sim.kinds.base import Kind


def build(b):
    raise NotImplementedError("the alipay kind is being built")


ALIPAY = Kind(products=("platform",), formats=("alipay",), build=build)
