"""The Alipay-like platform's refunds (`alipay.trade.refund`).

Owns `Refunds`, a mixin of `Alipay` (mockbanks/alipay.py, whose docstring describes the
behaviour): it reads and writes the platform's `_refunds` (successful answers by out_request_no),
`_refund_info` (what a refund's bill row prints), `truth`, `platform_account`, `currency`, and
uses `_trade` and `_next_id`. Split out of alipay.py so each file stays small.

A refund takes back part or all of a paid trade (several partial refunds, each under its own
`out_request_no`, up to the trade's amount). `out_request_no` de-duplicates: a repeat of a
refund that succeeded gets the stored answer with `fund_change` "N" (no money moved this time).
A refused refund is not stored (the same number may be tried again). The fee is not returned.
"""

from mockbanks.alipay_records import fail, first_bad, invalid, ok
from mockbanks.truth import ref_of

# refusals, in the order they are checked: (sub_code, what it means)
REFUND_REFUSALS = {
    "ACQ.TRADE_NOT_EXIST": "no such trade (or the trade_no named is not its charge)",
    "ACQ.TRADE_STATUS_ERROR": "the trade was never paid",
    "ACQ.TRADE_HAS_FINISHED": "the trade is finished: its refund window is over",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": "the refund exceeds what is left to refund",
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": "the merchant account cannot pay it back",
}


class Refunds:
    """Refunds of the platform's trades (a mixin of Alipay)."""

    def _refund(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        bad = first_bad(body, ("out_trade_no", "out_request_no"), ("refund_amount",))
        trade_no = body.get("trade_no")
        if bad is None and trade_no is not None and (not isinstance(trade_no, str)
                                                     or not trade_no):
            bad = "trade_no", f"expected a non-empty string or absent, got {trade_no!r}"
        ids = {"out_trade_no": body.get("out_trade_no"), "out_request_no":
               body.get("out_request_no")}
        if bad:
            return invalid(bad, **ids), []
        request_no, amount = body["out_request_no"], body["refund_amount"]
        if request_no in self._refunds:
            return {**self._refunds[request_no], "fund_change": "N"}, []
        trade = self._trade(body["out_trade_no"], now_ms)
        err = None
        if trade is None or trade.content is None or (
                trade_no is not None and trade_no != trade.trade_no):
            err = "ACQ.TRADE_NOT_EXIST"
        elif not trade.paid:
            err = "ACQ.TRADE_STATUS_ERROR"
        elif trade.state == "TRADE_FINISHED":
            err = "ACQ.TRADE_HAS_FINISHED"
        elif amount > trade.total_amount - trade.refunded:
            err = "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
        elif self.truth.balance(self.platform_account, self.currency) < amount:
            err = "ACQ.SELLER_BALANCE_NOT_ENOUGH"
        if err is not None:
            return fail(err, **ids), []
        refund_id, ref = self._next_id("ALR"), ref_of(request_no)
        trade.refunded += amount
        trade.fire("refund_all" if trade.refunded == trade.total_amount else "refund")
        self.truth.move(self.platform_account, f"wallet:{trade.buyer}", amount, self.currency,
                        now_ms, ref, refund_id, "refund")
        txn = self.truth.record(ref, refund_id, "refund", amount, 0, self.currency, now_ms)
        self._refunds[request_no] = ok(**ids, trade_no=trade.trade_no, refund_id=refund_id,
                                       refund_amount=amount, refund_fee=trade.refunded,
                                       fund_change="Y")
        self._refund_info[refund_id] = {"order_ref": ref_of(trade.out_trade_no),
                                        "user": trade.buyer, "orig_ref": trade.trade_no,
                                        "order_amount": trade.total_amount}
        data = {**txn, "out_trade_no": trade.out_trade_no, "out_request_no": request_no,
                "user_id": trade.buyer, "account": f"wallet:{trade.buyer}",
                "trade_status": trade.state}
        return dict(self._refunds[request_no]), [("event", "ali.txn", ref, data)]
