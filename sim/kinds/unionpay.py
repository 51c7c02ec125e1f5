"""(placeholder, filled by the channel's engineer)"""

from sim.kinds.base import Kind


def build(b):
    raise NotImplementedError("the unionpay kind is being built")


UNIONPAY = Kind(products=("unionpay",), formats=("alipay",), build=build)
