"""docs/orders.md draws the state machines from the tables: it must not drift from them."""

from pathlib import Path

from paysys.orders import mermaid

DOC = Path(__file__).resolve().parents[2] / "docs" / "orders.md"


def test_the_state_diagrams_in_the_docs_are_the_tables():
    text = DOC.read_text(encoding="utf-8")
    for kind in ("pay", "refund"):
        assert f"```mermaid\n{mermaid(kind)}\n```" in text, (
            f"docs/orders.md: the {kind} diagram differs from paysys/orders.py; regenerate it "
            f"from paysys.orders.mermaid({kind!r})")
