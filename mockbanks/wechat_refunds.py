"""The WeChat-like platform's refunds (`wx.refund`).

Owns `Refunds`, a mixin of `WeChat` (mockbanks/wechat.py, whose docstring describes the
behaviour): it reads and writes the platform's `_refunds` (answers by out_refund_no),
`_refund_info` (what a refund's bill row prints), `truth`, `platform_account`, `currency`, and
uses `_order` and `_next_id`. Split out of wechat.py so each file stays small.
"""

from mockbanks.truth import ref_of
from mockbanks.wechat_records import Charge, Order, fail, first_bad, ok, param_error


class Refunds:
    """Refunds of the platform's charges (a mixin of WeChat)."""

    def _refund(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        bad = first_bad(body, ("out_trade_no", "out_refund_no"), ("total_fee", "refund_fee"))
        txn_id = body.get("transaction_id")
        if bad is None and txn_id is not None and (not isinstance(txn_id, str) or not txn_id):
            bad = "transaction_id", f"expected a non-empty string or absent, got {txn_id!r}"
        if bad:
            return param_error(body, bad)
        out_refund_no, amount = body["out_refund_no"], body["refund_fee"]
        if out_refund_no in self._refunds:
            return dict(self._refunds[out_refund_no]), []
        order = self._order(body["out_trade_no"], now_ms)
        ids = {"out_trade_no": body["out_trade_no"], "out_refund_no": out_refund_no}
        pool = self._refundable(order, txn_id)
        parts, left = [], amount
        for charge in pool:
            take = min(left, charge.amount - charge.refunded)
            if take > 0:
                parts.append((charge, take))
                left -= take
        err = None
        if not pool:
            err = "ORDERNOTEXIST"
        elif body["total_fee"] != order.total_fee:
            return param_error(body, ("total_fee", f"expected {order.total_fee}, "
                                                         f"got {body['total_fee']}"))
        elif left > 0:
            err = "REFUND_FEE_INVALID"
        elif self.truth.balance(self.platform_account, self.currency) < amount:
            err = "NOTENOUGH"
        if err is not None:
            self._refunds[out_refund_no] = fail(err, **ids)
            return dict(self._refunds[out_refund_no]), []
        refund_id, ref = self._next_id("WXR"), ref_of(out_refund_no)
        if order.state in ("SUCCESS", "REFUND"):
            order.fire("refund")
        for charge, take in parts:
            charge.refunded += take
            self.truth.move(self.platform_account, f"wallet:{charge.user_id}", take,
                            self.currency, now_ms, ref, refund_id, "refund")
        txn = self.truth.record(ref, refund_id, "refund", amount, 0, self.currency, now_ms)
        self._refunds[out_refund_no] = ok(**ids, refund_id=refund_id, refund_fee=amount)
        payer = parts[0][0].user_id
        self._refund_info[refund_id] = {"order_ref": ref_of(order.out_trade_no), "user": payer,
                                        "orig_ref": parts[0][0].txn_id,
                                        "order_amount": order.total_fee}
        data = {**txn, "out_trade_no": order.out_trade_no, "out_refund_no": out_refund_no,
                "user_id": payer, "account": f"wallet:{payer}"}
        if txn_id is not None:
            data["transaction_id"] = txn_id
        return dict(self._refunds[out_refund_no]), [("event", "wx.txn", ref, data)]

    @staticmethod
    def _refundable(order: Order | None, txn_id: str | None) -> list[Charge]:
        """The charges a refund may take back: the one named, else the order's paying charges
        (only once the order is paid)."""
        if order is None:
            return []
        if txn_id is not None:
            return [c for c in order.charges if c.txn_id == txn_id]
        if order.state not in ("SUCCESS", "REFUND"):
            return []
        return [c for c in order.charges if c.credit > 0]
