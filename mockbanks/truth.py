"""Ground truth: the exact record of money at one counterparty (a bank or a platform).

Owns the accounts `{(account, currency): balance}` with their initial balances, the journal of
every movement, and the list of transactions the counterparty really did (TXN_KINDS: pays,
refunds, and a bank's payouts to merchants and transfers between the platform's accounts).
Money only ever moves between two opened accounts (`move`), so the sum of all balances per
currency never changes: that is the "conservation" invariant the oracle checks. A debit that
would overdraw an account not opened with `overdraft=True` raises `TruthError`: callers check
balances first and decline; reaching the error is a bug in the caller.

`accounts()` and `txns()` give the rows of the run-database tables `truth_accounts` and
`truth_txns` (without the `node` column, which the simulator adds).
"""

from dataclasses import dataclass

TXN_KINDS = ("pay", "refund", "payout", "transfer")


class TruthError(ValueError):
    """A movement the ground truth refuses (unknown account, bad amount, overdraft)."""


@dataclass(slots=True)
class _Account:
    initial: int
    balance: int
    overdraft: bool


def ref_of(channel_id: str) -> str:
    """The paysys order/refund id of a channel request id: `P0000000042.3` -> `P0000000042`."""
    return channel_id.split(".", 1)[0]


class Truth:
    """Exact money at one counterparty: accounts, movements and transactions."""

    def __init__(self, accounts: dict[tuple[str, str], int] | None = None) -> None:
        self._accounts: dict[tuple[str, str], _Account] = {}
        self._moves: list[dict] = []
        self._txns: list[dict] = []
        for (account, currency), initial in (accounts or {}).items():
            self.open(account, currency, initial)

    # -- accounts ---------------------------------------------------------------------------
    def open(self, account: str, currency: str, initial: int = 0, overdraft: bool = False) -> None:
        """Open `account` in `currency` with `initial` minor units (>= 0 unless `overdraft`)."""
        if not isinstance(account, str) or not account:
            raise TruthError(f"account: expected a non-empty string, got {account!r}")
        if not isinstance(currency, str) or len(currency) != 3:
            raise TruthError(f"currency: expected a 3-letter code, got {currency!r}")
        if isinstance(initial, bool) or not isinstance(initial, int):
            raise TruthError(f"initial: expected an integer number of minor units, got {initial!r}")
        if initial < 0 and not overdraft:
            raise TruthError(f"initial: {account} {currency} may not start negative ({initial})")
        if (account, currency) in self._accounts:
            raise TruthError(f"account: {account} {currency} is already open")
        self._accounts[(account, currency)] = _Account(initial, initial, overdraft)

    def has(self, account: str, currency: str) -> bool:
        return (account, currency) in self._accounts

    def balance(self, account: str, currency: str) -> int:
        return self._get(account, currency, "account").balance

    def total(self, currency: str) -> int:
        """Sum of all balances in `currency` (constant over the life of the truth)."""
        return sum(a.balance for (_, cur), a in self._accounts.items() if cur == currency)

    def initial_total(self, currency: str) -> int:
        return sum(a.initial for (_, cur), a in self._accounts.items() if cur == currency)

    def _get(self, account: str, currency: str, field: str) -> _Account:
        try:
            return self._accounts[(account, currency)]
        except KeyError:
            raise TruthError(f"{field}: no account {account!r} in {currency!r}") from None

    # -- movements --------------------------------------------------------------------------
    def move(
        self,
        debit_account: str,
        credit_account: str,
        amount: int,
        currency: str,
        at_ms: int,
        ref: str,
        channel_ref: str,
        kind: str,
    ) -> None:
        """Move `amount` from `debit_account` to `credit_account`; a zero amount is a no-op."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise TruthError(f"amount: expected a non-negative integer of minor units, got {amount!r}")
        if debit_account == credit_account:
            raise TruthError(f"credit_account: same as debit_account ({debit_account!r})")
        debit = self._get(debit_account, currency, "debit_account")
        credit = self._get(credit_account, currency, "credit_account")
        if amount == 0:
            return
        if debit.balance < amount and not debit.overdraft:
            raise TruthError(
                f"debit_account: {debit_account} {currency} holds {debit.balance}, "
                f"cannot pay {amount} (ref {ref})"
            )
        debit.balance -= amount
        credit.balance += amount
        self._moves.append({
            "debit": debit_account, "credit": credit_account, "amount": amount,
            "currency": currency, "at_ms": at_ms, "ref": ref, "channel_ref": channel_ref,
            "kind": kind,
        })

    def record(
        self,
        ref: str,
        channel_ref: str,
        kind: str,
        amount: int,
        fee: int,
        currency: str,
        at_ms: int,
        status: str = "SUCCESS",
    ) -> dict:
        """Record a transaction (a row of truth_txns); the money moves through `move`."""
        if kind not in TXN_KINDS:
            raise TruthError(f"kind: expected one of {', '.join(TXN_KINDS)}, got {kind!r}")
        txn = {"ref": ref, "channel_ref": channel_ref, "kind": kind, "amount": amount,
               "fee": fee, "currency": currency, "status": status, "at_ms": at_ms}
        self._txns.append(txn)
        return dict(txn)

    # -- views ------------------------------------------------------------------------------
    def accounts(self) -> list[dict]:
        """Rows of truth_accounts (minus `node`), in the order the accounts were opened."""
        return [
            {"account": account, "currency": currency, "initial": a.initial, "balance": a.balance}
            for (account, currency), a in self._accounts.items()
        ]

    def txns(self) -> list[dict]:
        """Rows of truth_txns (minus `node`), in the order they happened."""
        return [dict(t) for t in self._txns]

    def moves(self) -> list[dict]:
        """Every movement, in order (for traces and debugging)."""
        return [dict(m) for m in self._moves]
