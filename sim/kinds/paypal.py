"""(placeholder, filled by the channel's engineer)"""

from sim.kinds.base import Kind


def build(b):
    raise NotImplementedError("the paypal kind is being built")


PAYPAL = Kind(products=("foreign",), formats=("alipay",), build=build)
