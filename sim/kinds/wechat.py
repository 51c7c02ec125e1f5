"""The WeChat-like platform kind: QR payments from the users' wallets, notifications, bills."""

from mockbanks.wechat import WeChat
from sim.kinds.base import Build, Kind


def build(b: Build) -> WeChat:
    channel = b.channel
    node = WeChat(name=channel.id, rng=b.rng, fee_rule=b.fee, api_key=channel.api_key,
                  duplicate_notify_probability=channel.duplicate_notify_probability,
                  currency=b.currency, faults=b.faults, buggify=b.buggify,
                  statement_format=channel.statement, statement_ready_ms=channel.statement_ready_ms)
    for u in b.users:
        node.open_wallet(u.user_id, u.wallet_balance)
    return node


def user_pay(code_url: str, user_id: str, order_id: str) -> dict:
    """The user scans the QR code: `wx.user.pay` with the prepay id it carries."""
    return {"type": "wx.user.pay", "prepay_id": code_url.rsplit("pr=", 1)[-1], "user_id": user_id}


WECHAT = Kind(products=("platform",), formats=("wechat", "alipay"), build=build,
              user_pay=user_pay, notifies=True)
