"""The internal products paid inside paysys: balance pay (余额支付), virtual coins (虚币) and
credit pay (信用支付). No channel is involved: a `pay.create` of product "balance", "coins" or
"credit" is settled in the same unit of work, SUCCEEDED with its entry or FAILED with a code.

Accounts (every amount in the order's currency, int minor units):
- `liability:user:<user_id>` (paysys/products/chart.py): the user's stored value, external
  `user:<id>`, never below zero. A balance payment short of it is FAILED INSUFFICIENT_BALANCE.
- `liability:coins:<user_id>` (here; external `coins:<id>`, never below zero): the user's coins,
  **kept as their money value** in the currency they were bought in (CNY), so every entry
  balances per currency and "coins bought - spent + refunded = held" is a sum of postings. One
  coin is worth `CoinSettings.price` minor units: a coin payment's amount must be a whole number
  of coins (else FAILED INVALID_AMOUNT); short of coins: FAILED INSUFFICIENT_COINS. Coins are
  bought by card (`coins.buy`, a top-up: paysys/products/movements.py): the proceeds buy whole
  coins, the change goes to the user's balance.
- `asset:credit:<user_id>` (here; debit-normal, the user's debt to the platform): a credit
  payment draws on it; beyond `limit + overdraft` (CreditSettings) it is FAILED CREDIT_LIMIT.
  `credit.repay` (movements.py) pays it back by card. A refund first reduces the debt, the rest
  (the user repaid meanwhile) goes to the user's balance.

Entries (fees are the merchant's fee rule; a refund never gives the fee back, as for channels):
    pay:     Dr <source> amount / Cr liability:merchant:M amount - fee / Cr income:fee fee
    refund:  Dr liability:merchant:M amount / Cr <source> amount
with <source> = liability:user:U, liability:coins:U or asset:credit:U.

Plain helpers other families use (combined payments debit the user's balance):
- `balance_of(conn, user_id, currency) -> int`: the user's stored value in minor units.
- `balance_lines(user_id, currency, amount, merchant_id, merchant_fee) -> list[Line]`: the entry
  of a payment out of the user's balance.
- `coins_of`, `credit_drawn`, `credit_room`: the same for coins and credit.

Table `account_settings` (name, value): the coin price and the credit limit and ceiling in
force, written when the node starts working (`arm`), for the oracle (sim/checks/accounts.py).
"""

from dataclasses import dataclass

from paysys import ledger, payments, refunds, store
from paysys.ledger import LedgerError, Line
from paysys.money import MAX_AMOUNT
from paysys.products.base import Internal, Posting

ledger.register_family("liability:coins", "liability", "credit", sub="user_id", external="coins:")
ledger.register_family("asset:credit", "asset", "debit", sub="user_id")

DEFAULT_PRICE = 10               # minor units per coin
DEFAULT_LIMIT = 200_000          # a credit line of 2 000.00
DEFAULT_OVERDRAFT_BP = 1_000     # 10 % over the limit


@dataclass(frozen=True)
class CoinSettings:
    """`[products.coins]`: `price` = minor units one coin costs (> 0)."""

    price: int = DEFAULT_PRICE


@dataclass(frozen=True)
class CreditSettings:
    """`[products.credit]`: `limit` (minor units) of every user's credit line and the
    `overdraft_bp` allowed beyond it (basis points of the limit)."""

    limit: int = DEFAULT_LIMIT
    overdraft_bp: int = DEFAULT_OVERDRAFT_BP

    @property
    def ceiling(self) -> int:
        """The most a user may owe: limit + overdraft (rounded down)."""
        return self.limit + self.limit * self.overdraft_bp // 10_000


def coin_settings(node) -> CoinSettings:
    return node.cfg.products.get("coins") or CoinSettings()


def credit_settings(node) -> CreditSettings:
    return node.cfg.products.get("credit") or CreditSettings()


def user_account(user_id: str) -> str:
    """The ledger account of a user's stored value (mirrored onto external `user:<id>`)."""
    return f"liability:user:{user_id}"


def coins_account(user_id: str) -> str:
    return f"liability:coins:{user_id}"


def credit_account(user_id: str) -> str:
    return f"asset:credit:{user_id}"


def balance_of(conn, user_id: str, currency: str) -> int:
    """The stored value of `user_id` in `currency` (int minor units, >= 0; 0 if never used)."""
    return ledger.balance(conn, user_account(user_id), currency)


def coins_of(conn, user_id: str, currency: str) -> int:
    """The money value of the user's coins (coins = value // price)."""
    return ledger.balance(conn, coins_account(user_id), currency)


def credit_drawn(conn, user_id: str, currency: str) -> int:
    """What the user owes on the credit line (may be < 0 only if over-repaid: never by design)."""
    return ledger.balance(conn, credit_account(user_id), currency)


def credit_room(node, user_id: str, currency: str) -> int:
    """How much more the user may draw: limit + overdraft - drawn."""
    return credit_settings(node).ceiling - credit_drawn(node.conn, user_id, currency)


def _amount(value, field: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_AMOUNT:
        raise LedgerError("INVALID_LINE", f"{field}: expected an int {low}..{MAX_AMOUNT} of "
                          f"minor units, got {value!r}", field)
    return value


def pay_lines(source: str, currency: str, amount: int, merchant_id: str,
              merchant_fee: int) -> list[Line]:
    """A payment of `amount` out of ledger account `source` to the merchant (fee kept by the
    platform); zero lines left out."""
    _amount(amount, "amount", 1)
    _amount(merchant_fee, "merchant_fee", 0)
    if merchant_fee > amount:
        raise LedgerError("INVALID_LINE", f"merchant_fee: {merchant_fee} exceeds amount {amount}",
                          "merchant_fee")
    lines = [Line(source, currency, amount, 0),
             Line(f"liability:merchant:{merchant_id}", currency, 0, amount - merchant_fee),
             Line("income:fee", currency, 0, merchant_fee)]
    return [line for line in lines if line.debit or line.credit]


def balance_lines(user_id: str, currency: str, amount: int, merchant_id: str,
                  merchant_fee: int) -> list[Line]:
    """A payment of `amount` out of the user's balance to the merchant (fee kept by the
    platform). Posting it raises LedgerError INSUFFICIENT_BALANCE when the balance is short
    (`liability:user:*` never goes below zero). Zero lines are left out.

        Dr liability:user:U       amount
        Cr liability:merchant:M   amount - merchant_fee
        Cr income:fee             merchant_fee
    """
    return pay_lines(user_account(user_id), currency, amount, merchant_id, merchant_fee)


# -- the three products ---------------------------------------------------------------------


def _decline(node, order: dict, code: str, now_ms: int) -> None:
    payments.move(node, order, "decline", now_ms, error_code=code)
    payments.finished(node, order, now_ms)


def _settle(node, order: dict, source: str, memo: str, now_ms: int) -> None:
    fee = node.merchant_fee(order, order["amount"])
    lines = pay_lines(source, order["currency"], order["amount"], order["merchant_id"], fee)
    payments.move(node, order, "success", now_ms, merchant_fee=fee, received=order["amount"])
    payments.post(node, order["order_id"], memo, lines, now_ms)
    payments.finished(node, order, now_ms)


def pay_balance(node, order: dict, now_ms: int) -> None:
    user, cur = order["user_id"], order["currency"]
    if balance_of(node.conn, user, cur) < order["amount"]:
        _decline(node, order, "INSUFFICIENT_BALANCE", now_ms)
        return
    _settle(node, order, user_account(user), "payment:balance", now_ms)


def pay_coins(node, order: dict, now_ms: int) -> None:
    user, cur, price = order["user_id"], order["currency"], coin_settings(node).price
    if order["amount"] % price:
        _decline(node, order, "INVALID_AMOUNT", now_ms)   # not a whole number of coins
    elif coins_of(node.conn, user, cur) < order["amount"]:
        _decline(node, order, "INSUFFICIENT_COINS", now_ms)
    else:
        _settle(node, order, coins_account(user), "payment:coins", now_ms)


def pay_credit(node, order: dict, now_ms: int) -> None:
    if order["amount"] > credit_room(node, order["user_id"], order["currency"]):
        _decline(node, order, "CREDIT_LIMIT", now_ms)
        return
    _settle(node, order, credit_account(order["user_id"]), "payment:credit", now_ms)


def _give_back(node, refund: dict, lines: list[Line], now_ms: int) -> None:
    row = store.refund_order(node.conn, refund["refund_id"])   # every column (its reason)
    refunds._move(node, row, "success", now_ms)
    payments.post(node, row["refund_id"], "refund", lines, now_ms)
    store.add_refunded(node.conn, row["order_id"], row["amount"], now_ms)
    refunds._finished(node, row, now_ms)
    refund.update(row)      # the caller answers the merchant from its own dict


def _merchant_line(refund: dict) -> Line:
    return Line(f"liability:merchant:{refund['merchant_id']}", refund["currency"],
                refund["amount"], 0)


def refund_to(account_of):
    """A refund that credits the account `account_of(user_id)` with the whole amount."""
    def refund(node, order: dict, refund: dict, now_ms: int) -> None:
        lines = [_merchant_line(refund),
                 Line(account_of(order["user_id"]), refund["currency"], 0, refund["amount"])]
        _give_back(node, refund, lines, now_ms)
    return refund


def refund_credit(node, order: dict, refund: dict, now_ms: int) -> None:
    """The debt goes down first; what the user already repaid comes back to the balance."""
    user, cur, amount = order["user_id"], refund["currency"], refund["amount"]
    to_debt = max(0, min(amount, credit_drawn(node.conn, user, cur)))
    lines = [_merchant_line(refund)]
    if to_debt:
        lines.append(Line(credit_account(user), cur, 0, to_debt))
    if amount - to_debt:
        lines.append(Line(user_account(user), cur, 0, amount - to_debt))
    _give_back(node, refund, lines, now_ms)


INTERNAL = {
    "balance": Internal(pay=pay_balance, refund=refund_to(user_account)),
    "coins": Internal(pay=pay_coins, refund=refund_to(coins_account)),
    "credit": Internal(pay=pay_credit, refund=refund_credit),
}


SCHEMA = ("CREATE TABLE IF NOT EXISTS account_settings (name TEXT PRIMARY KEY, "
          "value INTEGER NOT NULL)",)


def arm(node, now_ms: int) -> None:
    """Record the settings the oracle checks against (coin price, credit ceiling)."""
    credit = credit_settings(node)
    node.conn.executemany(
        "INSERT OR REPLACE INTO account_settings (name, value) VALUES (?, ?)",
        [("coin_price", coin_settings(node).price), ("credit_limit", credit.limit),
         ("credit_ceiling", credit.ceiling)])


def recover(node, now_ms: int) -> None:
    """An internal order is settled in the unit that submits it, so none is left PROCESSING
    after a crash (that unit rolled back whole). One found PROCESSING anyway is paid now."""
    for (order_id,) in node.conn.execute(
            "SELECT order_id FROM pay_orders WHERE status='PROCESSING' AND product IN "
            "('balance','coins','credit')").fetchall():
        order = store.pay_order(node.conn, order_id)
        INTERNAL[order["product"]].pay(node, order, now_ms)


def _postings() -> tuple:
    rows = []
    for product, source in (("balance", "liability:user:<user>"),
                            ("coins", "liability:coins:<user>"),
                            ("credit", "asset:credit:<user>")):
        rows += [Posting(product, "pay", source, "Dr", "amount"),
                 Posting(product, "pay", "liability:merchant:<merchant>", "Cr", "amount - fee"),
                 Posting(product, "pay", "income:fee", "Cr", "fee"),
                 Posting(product, "refund", "liability:merchant:<merchant>", "Dr", "amount")]
        if product == "credit":
            rows += [Posting(product, "refund", source, "Cr", "min(amount, drawn)"),
                     Posting(product, "refund", "liability:user:<user>", "Cr",
                             "amount - min(amount, drawn)")]
        else:
            rows.append(Posting(product, "refund", source, "Cr", "amount"))
    return tuple(rows)


POSTINGS = _postings()
