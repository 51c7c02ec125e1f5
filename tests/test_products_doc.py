"""docs/products.md is generated (sim/products_doc.py): it must be the generator's output, and
the generator must show every registered order kind, product posting and channel kind, with the
core postings matching the ledger templates they describe."""

import difflib
from pathlib import Path

from paysys import ledger, orders, products
from sim import products_doc
from sim.kinds import KINDS

DOC = Path(__file__).resolve().parents[1] / "docs" / "products.md"
REGENERATE = ".venv/bin/python -m sim.products_doc > docs/products.md"


def test_the_page_is_the_generators_output():
    text, want = DOC.read_text(encoding="utf-8"), products_doc.render()
    if text != want:
        diff = "".join(list(difflib.unified_diff(text.splitlines(True), want.splitlines(True),
                                                 "docs/products.md", "generated"))[:40])
        raise AssertionError(f"docs/products.md differs from the code; run `{REGENERATE}`\n{diff}")


def test_every_registered_kind_posting_and_channel_kind_is_on_the_page():
    page = products_doc.render()
    for kind in orders.TABLES:
        assert f"### `{kind}`" in page
        assert f"```mermaid\n{orders.mermaid(kind)}\n```" in page
    for p in products.postings():
        assert f"| {p.operation} | `{p.account}` | {p.side or '—'} |" in page.replace("\\|", "|")
    for kind, spec in KINDS.items():
        assert f"| `{kind}` | {', '.join(spec.products)} |" in page


def _shape(lines) -> list[tuple[str, str]]:
    return [(line[0], "Dr" if line[2] else "Cr") for line in lines]


def _core(operation: str, **names: str) -> list[tuple[str, str]]:
    rows = [p for p in products_doc.CORE_POSTINGS if p.operation.startswith(operation)]
    assert rows, operation
    out = []
    for p in rows:
        account = p.account
        for placeholder, name in names.items():
            account = account.replace(f"<{placeholder}>", name)
        out.append((account, p.side))
    return out


def test_core_postings_are_the_ledger_templates():
    assert _core("payment", channel="C", merchant="M")[:5] == _shape(
        ledger.payment_lines("C", "M", "CNY", 1000, 6, 3))
    assert _core("refund", channel="C", merchant="M") == _shape(
        ledger.refund_lines("C", "M", "CNY", 500))
    assert _core("suspense", channel="C") == _shape(ledger.suspense_lines("C", "CNY", 700, 2))
    assert _core("compensation refund", channel="C") == _shape(
        ledger.suspense_refund_lines("C", "CNY", 700))
    assert _core("payment completed from suspense", merchant="M") == _shape(
        ledger.from_suspense(ledger.payment_lines("C", "M", "CNY", 1000, 6, 3), "C"))
    assert _core("settlement", payout="B", merchant="M") == _shape(
        ledger.settlement_lines("B", "M", "CNY", 100))
    assert _core("topup", payout="B") == _shape(ledger.topup_lines("B", "CNY", 100))
    assert _core("reserve", payout="B") == _shape(ledger.reserve_open_lines("B", "CNY", 100))
    assert _core("recon fee adjustment", channel="C") == _shape(
        ledger.fee_adjustment_lines("C", "CNY", 5))
