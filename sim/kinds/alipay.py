"""The Alipay-like platform kind: QR trades paid from the users' wallets, RSA2-signed
notifications (8 tries within 25 h), refunds, bills in the Alipay CSV format."""

from mockbanks.alipay import Alipay
from sim.kinds.base import Build, Kind


def build(b: Build) -> Alipay:
    channel = b.channel
    node = Alipay(name=channel.id, rng=b.rng, fee_rule=b.fee,
                  duplicate_notify_probability=channel.duplicate_notify_probability,
                  currency=b.currency, faults=b.faults, buggify=b.buggify,
                  statement_ready_ms=channel.statement_ready_ms)
    for u in b.users:
        node.open_wallet(u.user_id, u.wallet_balance)
    return node


def user_pay(code_url: str, user_id: str, order_id: str) -> dict:
    """The user scans the QR code: `ali.user.pay` with the code itself."""
    return {"type": "ali.user.pay", "qr_code": code_url, "user_id": user_id}


ALIPAY = Kind(products=("platform",), formats=("alipay",), build=build, user_pay=user_pay,
              notifies=True)
