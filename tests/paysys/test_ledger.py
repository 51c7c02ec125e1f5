"""The ledger: error codes (and nothing written on a rejection), templates, balances, reversal,
immutability; Hypothesis properties and a stateful model comparison."""

import sqlite3

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
)

from paysys import ledger
from paysys.ledger import CHART, LedgerError, Line, payment_lines, refund_lines
from paysys.money import MAX_AMOUNT

TABLES = ("journal_entries", "postings", "ledger_totals", "ext_balances")


def new_conn() -> sqlite3.Connection:
    db = sqlite_utils.Database(memory=True)
    ledger.create_tables(db)
    return db.conn


@pytest.fixture
def conn():
    conn = new_conn()
    yield conn
    conn.close()


def snapshot(conn) -> dict:
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}


def pay(conn, amount=10_000, fee=60, cost=30, merchant="M001", channel="bank", cur="CNY", at=1):
    lines = payment_lines(channel, merchant, cur, amount, fee, cost)
    return ledger.post(conn, at, "P0000000001", "pay", lines)


def refund(conn, amount, merchant="M001", channel="bank", cur="CNY", at=2):
    return ledger.post(
        conn, at, "R0000000001", "refund", refund_lines(channel, merchant, cur, amount)
    )


# -- chart ------------------------------------------------------------------------------------


def test_chart_types_and_normal_sides():
    core = {family: CHART[family] for family in list(CHART)[:7]}   # the product families add theirs
    assert core == {
        "asset:channel": ("asset", "debit"),
        "liability:merchant": ("liability", "credit"),
        "income:fee": ("income", "credit"),
        "expense:channel": ("expense", "debit"),
        "liability:suspense": ("liability", "credit"),
        "asset:reserve": ("asset", "debit"),
        "equity:capital": ("equity", "credit"),
    }


def test_a_charge_in_suspense_and_its_refund_cancel_out(conn):
    ledger.post(conn, 1, "P1", "suspense", ledger.suspense_lines("bank", "CNY", 500))
    assert ledger.balance(conn, "liability:suspense", "CNY") == 500
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 500
    ledger.post(conn, 2, "R1", "refund", ledger.suspense_refund_lines("bank", "CNY", 500))
    assert ledger.balance(conn, "liability:suspense", "CNY") == 0
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 0


def test_a_payment_completed_from_suspense_takes_the_money_out_of_it(conn):
    # each leg's channel cost is booked with the leg (the channel kept it then)
    ledger.post(conn, 1, "P1", "partial", ledger.suspense_lines("bank", "CNY", 300, 1))
    ledger.post(conn, 2, "P1", "partial", ledger.suspense_lines("bank", "CNY", 700, 1))
    lines = ledger.from_suspense(payment_lines("bank", "M1", "CNY", 1000, 6, 2), "bank")
    ledger.post(conn, 3, "P1", "payment", lines)
    assert ledger.balance(conn, "liability:suspense", "CNY") == 0
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 998
    assert ledger.balance(conn, "expense:channel:bank", "CNY") == 2
    assert ledger.balance(conn, "liability:merchant:M1", "CNY") == 994


@pytest.mark.parametrize(
    "name, family",
    [
        ("asset:channel:bank", "asset:channel"),
        ("asset:channel:wechat", "asset:channel"),
        ("liability:merchant:M001", "liability:merchant"),
        ("income:fee", "income:fee"),
        ("expense:channel:bank", "expense:channel"),
    ],
)
def test_account_type_resolves_family(name, family):
    assert ledger.account_type(name) == family


@pytest.mark.parametrize(
    "name",
    [
        "asset:bank",
        "asset:channel",
        "asset:channel:",
        "asset:channel:a:b",
        "income:fee:x",
        "liability:merchant",
        "income:fees",
        "",
        None,
        7,
    ],
)
def test_account_type_unknown(name):
    with pytest.raises(LedgerError) as exc:
        ledger.account_type(name)
    assert exc.value.code == "UNKNOWN_ACCOUNT"
    assert "asset:channel:<channel>" in exc.value.message


def test_error_code_must_be_known():
    with pytest.raises(ValueError):
        LedgerError("NOPE", "x")


# -- templates --------------------------------------------------------------------------------


def test_payment_lines_full():
    assert payment_lines("bank", "M1", "CNY", 10_000, 60, 30) == [
        ("asset:channel:bank", "CNY", 10_000, 0),
        ("liability:merchant:M1", "CNY", 0, 9_940),
        ("income:fee", "CNY", 0, 60),
        ("expense:channel:bank", "CNY", 30, 0),
        ("asset:channel:bank", "CNY", 0, 30),
    ]


def test_payment_lines_omit_zero_lines():
    assert payment_lines("bank", "M1", "JPY", 500, 0, 0) == [
        Line("asset:channel:bank", "JPY", 500, 0),
        Line("liability:merchant:M1", "JPY", 0, 500),
    ]
    # the whole amount as fee: nothing owed to the merchant
    assert payment_lines("wechat", "M1", "CNY", 100, 100, 0) == [
        Line("asset:channel:wechat", "CNY", 100, 0),
        Line("income:fee", "CNY", 0, 100),
    ]


def test_refund_lines():
    assert refund_lines("bank", "M1", "USD", 700) == [
        Line("liability:merchant:M1", "USD", 700, 0),
        Line("asset:channel:bank", "USD", 0, 700),
    ]


@pytest.mark.parametrize(
    "args, field",
    [
        ((0, 0, 0), "amount"),
        ((True, 0, 0), "amount"),
        ((10.0, 0, 0), "amount"),
        ((100, 101, 0), "merchant_fee"),
        ((100, -1, 0), "merchant_fee"),
        ((100, 0, -1), "channel_cost"),
        ((100, 0, 1.5), "channel_cost"),
    ],
)
def test_payment_lines_reject_bad_amounts(args, field):
    with pytest.raises(LedgerError) as exc:
        payment_lines("bank", "M1", "CNY", *args)
    assert exc.value.code == "INVALID_LINE" and exc.value.field == field


@given(
    amount=st.integers(1, MAX_AMOUNT),
    fee_num=st.integers(0, 1000),
    cost=st.integers(0, 10**9),
    cur=st.sampled_from(["CNY", "USD", "JPY"]),
)
def test_templates_are_balanced_and_well_formed(amount, fee_num, cost, cur):
    fee = amount * fee_num // 1000
    for lines in (
        payment_lines("c", "m", cur, amount, fee, cost),
        refund_lines("c", "m", cur, amount),
    ):
        assert sum(line.debit for line in lines) == sum(line.credit for line in lines)
        assert all((line.debit > 0) != (line.credit > 0) for line in lines)
        assert len(lines) >= 2
    lines = payment_lines("c", "m", cur, amount, fee, cost)
    net = {}
    for line in lines:
        net[line.account] = net.get(line.account, 0) + line.debit - line.credit
    assert net.get("liability:merchant:m", 0) == -(amount - fee)
    assert net["asset:channel:c"] == amount - cost


# -- posting ----------------------------------------------------------------------------------


def test_post_writes_entry_postings_totals_and_mirror(conn):
    entry_id = pay(conn, at=1_700_000_000_000)
    assert conn.execute("SELECT * FROM journal_entries").fetchall() == [
        (entry_id, 1_700_000_000_000, "P0000000001", "pay")
    ]
    postings = conn.execute(
        "SELECT entry_id, account, currency, debit, credit FROM postings ORDER BY posting_id"
    ).fetchall()
    assert postings == [
        (entry_id, *line) for line in payment_lines("bank", "M001", "CNY", 10_000, 60, 30)
    ]
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == 9_970
    assert ledger.balance(conn, "liability:merchant:M001", "CNY") == 9_940
    assert ledger.balance(conn, "income:fee", "CNY") == 60
    assert ledger.balance(conn, "expense:channel:bank", "CNY") == 30
    assert ledger.balance(conn, "asset:channel:bank", "USD") == 0
    assert ledger.external_balance(conn, "merchant:M001", "CNY") == 9_940
    assert conn.execute("SELECT updated_ms FROM ext_balances").fetchone() == (1_700_000_000_000,)
    assert ledger.trial_balance(conn) == {"CNY": (10_030, 10_030)}


def test_post_returns_increasing_ids_and_tracks_currencies_apart(conn):
    a = pay(conn)
    b = pay(conn, amount=300, fee=3, cost=0, cur="USD", merchant="M002")
    assert b > a
    assert ledger.trial_balance(conn) == {"CNY": (10_030, 10_030), "USD": (300, 300)}
    assert ledger.external_balance(conn, "merchant:M002", "USD") == 297
    assert ledger.external_balance(conn, "merchant:M002", "CNY") == 0
    assert ledger.external_balance(conn, "merchant:nobody", "CNY") == 0


def test_post_does_not_commit(conn):
    pay(conn)
    assert conn.in_transaction
    conn.rollback()
    assert all(rows == [] for rows in snapshot(conn).values())


def test_balance_of_unknown_account(conn):
    with pytest.raises(LedgerError) as exc:
        ledger.balance(conn, "equity:owner", "CNY")
    assert exc.value.code == "UNKNOWN_ACCOUNT"


GOOD = [("asset:channel:bank", "CNY", 100, 0), ("liability:merchant:M001", "CNY", 0, 100)]
BAD_LINES = {
    "one line": [("asset:channel:bank", "CNY", 100, 0)],
    "no lines": [],
    "bool debit": [
        ("asset:channel:bank", "CNY", True, 0),
        ("liability:merchant:M001", "CNY", 0, 1),
    ],
    "float debit": [("asset:channel:bank", "CNY", 100.0, 0), GOOD[1]],
    "float credit": [GOOD[0], ("liability:merchant:M001", "CNY", 0, 100.0)],
    "negative": [
        ("asset:channel:bank", "CNY", -100, 0),
        ("liability:merchant:M001", "CNY", 0, -100),
    ],
    "both sides": [
        ("asset:channel:bank", "CNY", 100, 100),
        ("liability:merchant:M001", "CNY", 100, 100),
    ],
    "zero line": [*GOOD, ("income:fee", "CNY", 0, 0)],
    "too big": [
        ("asset:channel:bank", "CNY", MAX_AMOUNT + 1, 0),
        ("liability:merchant:M001", "CNY", 0, MAX_AMOUNT + 1),
    ],
    "bad currency": [
        ("asset:channel:bank", "XXX", 100, 0),
        ("liability:merchant:M001", "XXX", 0, 100),
    ],
    "short line": [("asset:channel:bank", "CNY", 100), GOOD[1]],
    "str line": ["asset:channel:bank CNY 100 0", GOOD[1]],
    "not a list": "lines",
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_invalid_line_writes_nothing(conn, case):
    pay(conn)
    before = snapshot(conn)
    with pytest.raises(LedgerError) as exc:
        ledger.post(conn, 5, "P2", "bad", BAD_LINES[case])
    assert exc.value.code == "INVALID_LINE"
    assert exc.value.field and exc.value.field.startswith("lines")
    assert snapshot(conn) == before


def test_invalid_line_names_the_field(conn):
    with pytest.raises(LedgerError) as exc:
        ledger.post(conn, 5, "P2", "bad", BAD_LINES["float credit"])
    assert exc.value.field == "lines[1].credit"
    assert "100.0" in exc.value.message


@pytest.mark.parametrize(
    "at_ms, ref, memo, field",
    [
        (1.5, "P", "m", "at_ms"),
        (True, "P", "m", "at_ms"),
        (-1, "P", "m", "at_ms"),
        (1, None, "m", "ref"),
        (1, "P", 3, "memo"),
    ],
)
def test_invalid_header_writes_nothing(conn, at_ms, ref, memo, field):
    with pytest.raises(LedgerError) as exc:
        ledger.post(conn, at_ms, ref, memo, GOOD)
    assert (exc.value.code, exc.value.field) == ("INVALID_LINE", field)
    assert all(rows == [] for rows in snapshot(conn).values())


def test_unknown_account_writes_nothing(conn):
    pay(conn)
    before = snapshot(conn)
    lines = [("asset:channel:bank", "CNY", 100, 0), ("liability:customer:U1", "CNY", 0, 100)]
    with pytest.raises(LedgerError) as exc:
        ledger.post(conn, 5, "P2", "bad", lines)
    assert exc.value.code == "UNKNOWN_ACCOUNT"
    assert exc.value.field == "lines[1].account"
    assert snapshot(conn) == before


@pytest.mark.parametrize(
    "lines",
    [
        [("asset:channel:bank", "CNY", 100, 0), ("liability:merchant:M001", "CNY", 0, 99)],
        # balanced in total but not per currency
        [("asset:channel:bank", "CNY", 100, 0), ("liability:merchant:M001", "USD", 0, 100)],
        [("asset:channel:bank", "CNY", 100, 0), ("asset:channel:bank", "CNY", 100, 0)],
    ],
)
def test_unbalanced_writes_nothing(conn, lines):
    pay(conn)
    before = snapshot(conn)
    with pytest.raises(LedgerError) as exc:
        ledger.post(conn, 5, "P2", "bad", lines)
    assert exc.value.code == "UNBALANCED"
    assert snapshot(conn) == before


def test_insufficient_balance_writes_nothing(conn):
    with pytest.raises(LedgerError) as exc:
        refund(conn, 1)  # nothing was ever paid
    assert exc.value.code == "INSUFFICIENT_BALANCE"
    assert all(rows == [] for rows in snapshot(conn).values())
    pay(conn)  # merchant owed 9 940
    before = snapshot(conn)
    with pytest.raises(LedgerError) as exc:
        refund(conn, 9_941)
    assert exc.value.code == "INSUFFICIENT_BALANCE"
    assert "liability:merchant:M001" in exc.value.message
    assert snapshot(conn) == before
    refund(conn, 9_940)  # down to exactly zero is allowed
    assert ledger.balance(conn, "liability:merchant:M001", "CNY") == 0
    assert ledger.external_balance(conn, "merchant:M001", "CNY") == 0


def test_limit_is_per_merchant_and_currency(conn):
    pay(conn, merchant="M001", cur="CNY")
    for merchant, cur in (("M002", "CNY"), ("M001", "USD")):
        with pytest.raises(LedgerError) as exc:
            refund(conn, 1, merchant=merchant, cur=cur)
        assert exc.value.code == "INSUFFICIENT_BALANCE"


def test_limit_uses_the_entry_net_movement(conn):
    # a debit covered by a credit to the same merchant account in the same entry is fine
    lines = [
        ("liability:merchant:M001", "CNY", 50, 0),
        ("liability:merchant:M001", "CNY", 0, 80),
        ("asset:channel:bank", "CNY", 30, 0),
    ]
    ledger.post(conn, 1, "X", "netting", lines)
    assert ledger.balance(conn, "liability:merchant:M001", "CNY") == 30
    assert ledger.external_balance(conn, "merchant:M001", "CNY") == 30


def test_other_accounts_may_go_negative(conn):
    # assets and income carry no limit: a fee give-back may take income below zero
    lines = [("income:fee", "CNY", 5, 0), ("asset:channel:bank", "CNY", 0, 5)]
    ledger.post(conn, 1, "X", "adjust", lines)
    assert ledger.balance(conn, "income:fee", "CNY") == -5
    assert ledger.balance(conn, "asset:channel:bank", "CNY") == -5


# -- reversal and immutability ------------------------------------------------------------------


def test_reverse_posts_the_mirror(conn):
    entry = pay(conn)
    rev = ledger.reverse(conn, entry, 99, "reversal of pay")
    assert rev > entry
    assert conn.execute(
        "SELECT at_ms, ref, memo FROM journal_entries WHERE entry_id = ?", (rev,)
    ).fetchone() == (
        99,
        "P0000000001",
        "reversal of pay",
    )
    original = conn.execute(
        "SELECT account, currency, debit, credit FROM postings WHERE entry_id = ? ORDER BY posting_id",
        (entry,),
    ).fetchall()
    mirror = conn.execute(
        "SELECT account, currency, credit, debit FROM postings WHERE entry_id = ? ORDER BY posting_id",
        (rev,),
    ).fetchall()
    assert mirror == original
    for account in (
        "asset:channel:bank",
        "liability:merchant:M001",
        "income:fee",
        "expense:channel:bank",
    ):
        assert ledger.balance(conn, account, "CNY") == 0
    assert ledger.external_balance(conn, "merchant:M001", "CNY") == 0
    assert ledger.trial_balance(conn) == {"CNY": (20_060, 20_060)}


def test_reverse_respects_the_limit_and_unknown_entry(conn):
    entry = pay(conn)
    refund(conn, 5_000)
    before = snapshot(conn)
    with pytest.raises(LedgerError) as exc:
        ledger.reverse(conn, entry, 3, "reversal")  # would take the merchant to -5 000
    assert exc.value.code == "INSUFFICIENT_BALANCE"
    with pytest.raises(LedgerError) as exc:
        ledger.reverse(conn, 12345, 3, "reversal")
    assert exc.value.code == "UNKNOWN_ENTRY"
    assert snapshot(conn) == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE journal_entries SET memo = 'x'",
        "DELETE FROM journal_entries",
        "UPDATE postings SET debit = debit + 1",
        "DELETE FROM postings",
    ],
)
def test_entries_are_immutable(conn, sql):
    pay(conn)
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute(sql)


def test_create_tables_is_idempotent(conn):
    db = sqlite_utils.Database(conn)
    pay(conn)
    ledger.create_tables(db)
    assert ledger.balance(conn, "liability:merchant:M001", "CNY") == 9_940
    assert set(TABLES) <= set(db.table_names())


# -- properties -----------------------------------------------------------------------------------

CHANNELS = ["bank", "wechat"]
MERCHANTS = ["M001", "M002", "M003"]
CURS = ["CNY", "USD", "JPY"]
ACCOUNT_FAMILIES = {
    "asset:channel": CHANNELS,
    "liability:merchant": MERCHANTS,
    "expense:channel": CHANNELS,
    "income:fee": [None],
}
ALL_ACCOUNTS = [
    f"{fam}:{sub}" if sub else fam for fam, subs in ACCOUNT_FAMILIES.items() for sub in subs
]


def sum_over_postings(conn, account, currency) -> int:
    debits, credits = conn.execute(
        "SELECT COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) FROM postings "
        "WHERE account = ? AND currency = ?",
        (account, currency),
    ).fetchone()
    normal = CHART[ledger.account_type(account)][1]
    return debits - credits if normal == "debit" else credits - debits


def check_books(conn) -> None:
    for cur, (debits, credits) in ledger.trial_balance(conn).items():
        assert debits == credits, cur
    for account in ALL_ACCOUNTS:
        for cur in CURS:
            assert ledger.balance(conn, account, cur) == sum_over_postings(conn, account, cur)
    for merchant in MERCHANTS:
        for cur in CURS:
            owed = ledger.balance(conn, f"liability:merchant:{merchant}", cur)
            assert ledger.external_balance(conn, f"merchant:{merchant}", cur) == owed
            assert owed >= 0


payment_op = st.tuples(
    st.just("pay"),
    st.sampled_from(CHANNELS),
    st.sampled_from(MERCHANTS),
    st.sampled_from(CURS),
    st.integers(1, 10**9),
    st.integers(0, 1000),  # merchant fee, per mille of the amount
    st.integers(0, 1000),  # channel cost, per mille of the amount
)
refund_op = st.tuples(
    st.just("refund"),
    st.sampled_from(CHANNELS),
    st.sampled_from(MERCHANTS),
    st.sampled_from(CURS),
    st.integers(1, 10**9),
    st.just(0),
    st.just(0),
)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.one_of(payment_op, refund_op), max_size=30))
def test_any_valid_sequence_keeps_the_books(ops):
    conn = new_conn()
    try:
        owed: dict[tuple[str, str], int] = {}
        for i, (kind, channel, merchant, cur, amount, fee_pm, cost_pm) in enumerate(ops):
            if kind == "pay":
                fee, cost = amount * fee_pm // 1000, amount * cost_pm // 1000
                ledger.post(
                    conn,
                    i,
                    f"P{i}",
                    "pay",
                    payment_lines(channel, merchant, cur, amount, fee, cost),
                )
                owed[merchant, cur] = owed.get((merchant, cur), 0) + amount - fee
            else:
                amount = min(amount, owed.get((merchant, cur), 0))  # keep the refund valid
                if amount:
                    ledger.post(
                        conn, i, f"R{i}", "refund", refund_lines(channel, merchant, cur, amount)
                    )
                    owed[merchant, cur] -= amount
        check_books(conn)
        for (merchant, cur), value in owed.items():
            assert ledger.balance(conn, f"liability:merchant:{merchant}", cur) == value
    finally:
        conn.close()


class LedgerMachine(RuleBasedStateMachine):
    """Pays, refunds (valid and over-refunds), reverses; compares with a pure-Python model."""

    entries = Bundle("entries")

    def __init__(self) -> None:
        super().__init__()
        self.conn = new_conn()
        self.totals: dict[tuple[str, str], list[int]] = {}  # (account, cur) -> [debits, credits]
        self.lines: dict[int, list] = {}  # entry_id -> the lines we posted
        self.n_postings = 0
        self.clock = 0

    def teardown(self) -> None:
        self.conn.close()

    def owed(self, merchant: str, cur: str) -> int:
        debits, credits = self.totals.get((f"liability:merchant:{merchant}", cur), (0, 0))
        return credits - debits

    def apply(self, entry_id: int, lines: list) -> None:
        for account, cur, debit, credit in lines:
            total = self.totals.setdefault((account, cur), [0, 0])
            total[0] += debit
            total[1] += credit
        self.lines[entry_id] = list(lines)
        self.n_postings += len(lines)

    def post(self, ref: str, memo: str, lines: list) -> int:
        self.clock += 1
        entry_id = ledger.post(self.conn, self.clock, ref, memo, lines)
        self.apply(entry_id, lines)
        return entry_id

    @rule(
        target=entries,
        channel=st.sampled_from(CHANNELS),
        merchant=st.sampled_from(MERCHANTS),
        cur=st.sampled_from(CURS),
        amount=st.integers(1, 10**6),
        data=st.data(),
    )
    def pay(self, channel, merchant, cur, amount, data):
        fee = data.draw(st.integers(0, amount), label="merchant_fee")
        cost = data.draw(st.integers(0, amount), label="channel_cost")
        return self.post("P", "pay", payment_lines(channel, merchant, cur, amount, fee, cost))

    @precondition(lambda self: any(self.owed(m, c) > 0 for m in MERCHANTS for c in CURS))
    @rule(target=entries, channel=st.sampled_from(CHANNELS), data=st.data())
    def refund(self, channel, data):
        merchant, cur = data.draw(
            st.sampled_from([(m, c) for m in MERCHANTS for c in CURS if self.owed(m, c) > 0]),
            label="merchant, currency",
        )
        amount = data.draw(st.integers(1, self.owed(merchant, cur)), label="amount")
        return self.post("R", "refund", refund_lines(channel, merchant, cur, amount))

    @rule(
        channel=st.sampled_from(CHANNELS),
        merchant=st.sampled_from(MERCHANTS),
        cur=st.sampled_from(CURS),
        excess=st.integers(1, 10**6),
    )
    def over_refund(self, channel, merchant, cur, excess):
        before = snapshot(self.conn)
        with pytest.raises(LedgerError) as exc:
            ledger.post(
                self.conn,
                self.clock,
                "R",
                "refund",
                refund_lines(channel, merchant, cur, self.owed(merchant, cur) + excess),
            )
        assert exc.value.code == "INSUFFICIENT_BALANCE"
        assert snapshot(self.conn) == before

    @rule(target=entries, entry=entries)
    def reverse(self, entry):
        mirror = [(a, c, credit, debit) for a, c, debit, credit in self.lines[entry]]
        net: dict[tuple[str, str], int] = {}
        for account, cur, debit, credit in mirror:
            net[account, cur] = net.get((account, cur), 0) + credit - debit
        too_much = any(
            account.startswith("liability:merchant:")
            and self.owed(account.split(":")[2], cur) + change < 0
            for (account, cur), change in net.items()
        )
        self.clock += 1
        if too_much:
            before = snapshot(self.conn)
            with pytest.raises(LedgerError) as exc:
                ledger.reverse(self.conn, entry, self.clock, "reversal")
            assert exc.value.code == "INSUFFICIENT_BALANCE"
            assert snapshot(self.conn) == before
            return multiple()
        new = ledger.reverse(self.conn, entry, self.clock, "reversal")
        self.apply(new, mirror)
        return new

    @invariant()
    def books_match_the_model(self):
        conn = self.conn
        assert conn.execute("SELECT COUNT(*) FROM journal_entries").fetchone()[0] == len(self.lines)
        assert conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0] == self.n_postings
        check_books(conn)   # hot accounts exact before their totals are aggregated
        ledger.flush_hot(conn)
        stored = {(a, c): [d, cr] for a, c, d, cr in conn.execute("SELECT * FROM ledger_totals")}
        assert stored == self.totals
        expected_trial: dict[str, tuple[int, int]] = {}
        for (_account, cur), (debits, credits) in self.totals.items():
            d, c = expected_trial.get(cur, (0, 0))
            expected_trial[cur] = (d + debits, c + credits)
        assert ledger.trial_balance(conn) == expected_trial
        for (account, cur), (debits, credits) in self.totals.items():
            normal = CHART[ledger.account_type(account)][1]
            want = debits - credits if normal == "debit" else credits - debits
            assert (
                ledger.balance(conn, account, cur) == want == sum_over_postings(conn, account, cur)
            )
        check_books(conn)


LedgerMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_state_machine = LedgerMachine.TestCase


@pytest.mark.parametrize("difference", [7, -7])
def test_a_fee_adjustment_moves_the_difference_between_cost_and_position(difference):
    lines = ledger.fee_adjustment_lines("wechat", "CNY", difference)
    sides = {line.account: line.debit - line.credit for line in lines}
    assert sides == {"expense:channel:wechat": difference, "asset:channel:wechat": -difference}


@pytest.mark.parametrize("bad", [0, True, 1.5, "7"])
def test_a_fee_adjustment_needs_a_non_zero_integer(bad):
    with pytest.raises(LedgerError, match="difference"):
        ledger.fee_adjustment_lines("wechat", "CNY", bad)
