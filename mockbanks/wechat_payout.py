"""Transfers to a user's wallet (企业付款到零钱, the platform's 代付): a part of the WeChat-like
platform (mockbanks/wechat.py).

Owns `wx.transfer` {req_id, user_id, amount, fee_type, desc?}: moves `amount` from the payment
system's merchant account (`platform`) to `wallet:<user_id>` (opened at 0 on its first
transfer), truth kind `payout` (ref = the paysys movement id, the part of `req_id` before the
first dot). Answers {return_code SUCCESS, result_code SUCCESS|FAIL, err_code None|NOTENOUGH,
req_id, payment_no, amount}: NOTENOUGH when the platform's account is short (nothing moved); a
request with a bad field is return_code FAIL / PARAM_ERROR naming it (nothing recorded). A
repeated req_id is answered from the record and never pays twice. Maintenance and rate limits
refuse it like any request. Transfers are not in the bills.

mockbanks/wechat.py adds `**WalletPayouts(self).ops()` to `self._ops`.
"""

from mockbanks.truth import ref_of

OP = "wx.transfer"


class WalletPayouts:
    def __init__(self, wechat) -> None:
        self.wechat = wechat
        self._done: dict[str, dict] = {}      # req_id -> stored answer

    def ops(self) -> dict:
        """request type -> handler `(src, body, now_ms) -> (reply fields, effects)`."""
        return {OP: self.transfer}

    def transfer(self, src: str, body: dict, now_ms: int) -> tuple[dict, list]:
        wx, cur = self.wechat, self.wechat.currency
        problem = None
        for field in ("req_id", "user_id"):
            value = body.get(field)
            if problem is None and (not isinstance(value, str) or not value):
                problem = field, f"expected a non-empty string, got {value!r}"
        amount = body.get("amount")
        if problem is None and (isinstance(amount, bool) or not isinstance(amount, int)
                                or amount <= 0):
            problem = "amount", f"expected a positive integer of minor units, got {amount!r}"
        if problem is None and body.get("fee_type") != cur:
            problem = "fee_type", f"expected {cur!r}, got {body.get('fee_type')!r}"
        if problem:
            return {"return_code": "FAIL", "return_msg": f"{problem[0]}: {problem[1]}",
                    "err_code": "PARAM_ERROR", "field": problem[0],
                    "req_id": body.get("req_id")}, []
        req_id = body["req_id"]
        if req_id in self._done:
            return dict(self._done[req_id]), []
        answer = {"return_code": "SUCCESS", "result_code": "FAIL", "err_code": "NOTENOUGH",
                  "req_id": req_id, "payment_no": None, "amount": amount}
        self._done[req_id] = answer
        if wx.truth.balance(wx.platform_account, cur) < amount:
            return dict(answer), []
        wallet = f"wallet:{body['user_id']}"
        if not wx.truth.has(wallet, cur):
            wx.truth.open(wallet, cur, 0)
        txn_id, ref = wx._next_id("WXP"), ref_of(req_id)
        wx.truth.move(wx.platform_account, wallet, amount, cur, now_ms, ref, txn_id, "payout")
        txn = wx.truth.record(ref, txn_id, "payout", amount, 0, cur, now_ms)
        answer.update(result_code="SUCCESS", err_code=None, payment_no=txn_id)
        return dict(answer), [("event", "wx.txn", ref, {**txn, "req_id": req_id,
                                                        "user_id": body["user_id"],
                                                        "account": wallet})]
