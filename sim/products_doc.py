"""docs/products.md, generated: the product catalogue as the code registers it.

    .venv/bin/python -m sim.products_doc > docs/products.md

The page is drawn from the tables, never by hand, so it cannot drift from them
(tests/test_products_doc.py fails when the file and `render()` differ):
- the products: which channel kinds serve each, whether paysys pays it inside itself, its
  journey and the channel products it needs, and its settings (`[products.<name>]`: the
  defaults of the settings object its journey builds for the payment system);
- the channel kinds (`sim.kinds.KINDS`): products, statement formats, options, how users pay;
- every order kind of `paysys.orders.TABLES` (pay, refund and each product family's kinds):
  its table, final statuses and Mermaid state diagram (`orders.mermaid`);
- the ledger postings of every operation: the core ones (`CORE_POSTINGS`, below: the lines of
  `paysys/postings.py`'s templates and of splits) and each family's `POSTINGS`
  (`paysys.products.postings()`), as operation | account | Dr/Cr | amount.
Lives in sim/ because it reads both sides of the catalogue (paysys may not import sim).
"""

from __future__ import annotations

import dataclasses
import sys

from paysys import orders, products, store
from paysys.products import Posting
from sim import checks
from sim.journeys import JOURNEYS
from sim.kinds import KINDS

CORE = "core"
C, M = "<channel>", "<merchant>"

# The entries of the core flows (paysys/postings.py, clearing.py), one Posting per line.
CORE_POSTINGS: tuple[Posting, ...] = (
    Posting(CORE, "payment", f"asset:channel:{C}", "Dr", "amount"),
    Posting(CORE, "payment", f"liability:merchant:{M}", "Cr", "amount - merchant fee"),
    Posting(CORE, "payment", "income:fee", "Cr", "merchant fee"),
    Posting(CORE, "payment", f"expense:channel:{C}", "Dr", "channel cost"),
    Posting(CORE, "payment", f"asset:channel:{C}", "Cr", "channel cost"),
    Posting(CORE, "payment split (分账, under settlement)", f"liability:merchant:{M}", "Dr",
            "half-up(amount × bp / 10000) per receiver"),
    Posting(CORE, "payment split (分账, under settlement)", "liability:merchant:<receiver>", "Cr",
            "half-up(amount × bp / 10000)"),
    Posting(CORE, "refund", f"liability:merchant:{M}", "Dr", "refund amount"),
    Posting(CORE, "refund", f"asset:channel:{C}", "Cr", "refund amount"),
    Posting(CORE, "suspense (a charge no paid order keeps)", f"asset:channel:{C}", "Dr",
            "charge"),
    Posting(CORE, "suspense (a charge no paid order keeps)", "liability:suspense", "Cr", "charge"),
    Posting(CORE, "suspense (a charge no paid order keeps)", f"expense:channel:{C}", "Dr",
            "channel cost"),
    Posting(CORE, "suspense (a charge no paid order keeps)", f"asset:channel:{C}", "Cr",
            "channel cost"),
    Posting(CORE, "compensation refund (of a charge in suspense)", "liability:suspense", "Dr",
            "charge"),
    Posting(CORE, "compensation refund (of a charge in suspense)", f"asset:channel:{C}", "Cr",
            "charge"),
    Posting(CORE, "payment completed from suspense (partial payments)", "liability:suspense",
            "Dr", "amount"),
    Posting(CORE, "payment completed from suspense (partial payments)",
            f"liability:merchant:{M}", "Cr", "amount - merchant fee"),
    Posting(CORE, "payment completed from suspense (partial payments)", "income:fee", "Cr",
            "merchant fee"),
    Posting(CORE, "settlement (代付)", f"liability:merchant:{M}", "Dr", "net"),
    Posting(CORE, "settlement (代付)", "asset:channel:<payout>", "Cr", "net"),
    Posting(CORE, "topup (of the payout position)", "asset:channel:<payout>", "Dr", "amount"),
    Posting(CORE, "topup (of the payout position)", "asset:reserve:<payout>", "Cr", "amount"),
    Posting(CORE, "reserve (备付金, opened once)", "asset:reserve:<payout>", "Dr", "reserve"),
    Posting(CORE, "reserve (备付金, opened once)", "equity:capital", "Cr", "reserve"),
    Posting(CORE, "recon fee adjustment (调账; mirrored when the channel kept less)",
            f"expense:channel:{C}", "Dr", "statement fee - booked fee"),
    Posting(CORE, "recon fee adjustment (调账; mirrored when the channel kept less)",
            f"asset:channel:{C}", "Cr", "statement fee - booked fee"),
)


def _cell(value: object) -> str:
    text = str(value) if value not in (None, "") else "—"
    return text.replace("|", "\\|").replace("\n", " ")


def _table(head: tuple[str, ...], rows: list[tuple]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return out


def _catalogue() -> list[str]:
    """Every product name the code knows, in a stable order: channel kinds' first."""
    names = [p for k in KINDS.values() for p in k.products]
    names += list(JOURNEYS) + list(products.merged("INTERNAL"))
    names += [p.product for p in products.postings()]
    return list(dict.fromkeys(names))


def _settings(name: str) -> str:
    """The defaults of the settings object the journey builds with no `[products.<name>]`."""
    journey = JOURNEYS.get(name)
    if journey is None or journey.paysys is None:
        return "—"
    try:
        obj = journey.paysys(None)
    except Exception as err:   # noqa: BLE001  (a family that needs its table says so)
        return f"a [products.{name}] table is required ({type(err).__name__})"
    if dataclasses.is_dataclass(obj):
        return ", ".join(f"`{f.name} = {getattr(obj, f.name)!r}`" for f in dataclasses.fields(obj))
    if isinstance(obj, dict):
        return ", ".join(f"`{k} = {v!r}`" for k, v in obj.items()) or "—"
    return f"`{obj!r}`"


def _products() -> list[str]:
    internal = products.merged("INTERNAL")
    rows = []
    for name in _catalogue():
        kinds = ", ".join(k for k, spec in KINDS.items() if name in spec.products)
        journey = JOURNEYS.get(name)
        drawn = bool(kinds) or name in internal or journey is not None
        rows.append((
            f"`{name}`", kinds or ("inside paysys" if name in internal else "—"),
            "own journey" if journey is not None and journey.start else
            "default (`pay.create`)" if drawn else "— (its own requests, not traffic)",
            ", ".join(journey.needs) if journey is not None and journey.needs else "—",
            "yes" if journey is not None and journey.options else "no",
            _settings(name),
        ))
    return ["## Products", "",
            "What traffic may draw (`[traffic] products`): the channel kinds serving each "
            "product (or paysys itself), what the simulated merchant and user do, the channel "
            "products a journey needs, whether it takes a `[products.<name>]` table, and the "
            "defaults of the settings the payment system's family receives.", "",
            *_table(("product", "served by", "journey", "needs", "[products.<name>]",
                     "settings (defaults)"), rows)]


def _kinds() -> list[str]:
    rows = [(f"`{name}`", ", ".join(k.products), ", ".join(k.formats),
             "yes" if k.options else "no",
             "pays the `code_url` at the channel" if k.user_pay else "—",
             "yes" if k.notifies else "no")
            for name, k in KINDS.items()]
    return ["## Channel kinds", "",
            "`[[channels]] kind = ...` (`sim.kinds.KINDS`): the products its channels serve (a "
            "channel may narrow them with `products`), its statement formats (the first is the "
            "default), whether it takes `options = {...}`, what the user does with a `code_url`, "
            "and whether it notifies paysys.", "",
            *_table(("kind", "products", "statement formats", "options", "user", "notifies"),
                    rows)]


def _orders() -> list[str]:
    out = ["## Order kinds", "",
           "Every kind of order (`paysys.orders.TABLES`): each status change is a "
           "compare-and-set recorded in `transitions` and an `order.state` event.", ""]
    tables = {"pay": "pay_orders", "refund": "refund_orders"}
    tables.update((kind, spec[0]) for kind, spec in products.merged("ORDERS").items())
    for kind, table in orders.TABLES.items():
        statuses = [getattr(s, "value", s) for s in table]
        final = ", ".join(s for s in statuses if orders.is_final(kind, s))
        where, key = tables.get(kind, "?"), store.order_key(kind)
        out += [f"### `{kind}`", "", f"Table `{where}` (id `{key}`); final: {final}.", "",
                "```mermaid", orders.mermaid(kind), "```", ""]
    return out[:-1]


def _postings() -> list[str]:
    out = ["## Ledger postings", "",
           "The lines of every operation's ledger entry (amounts in minor units; `<channel>`, "
           "`<merchant>`, `<user>`: the order's). Every entry balances per currency.", ""]
    rows = list(CORE_POSTINGS) + products.postings()
    by_product: dict[str, list[Posting]] = {}
    for p in rows:
        by_product.setdefault(p.product, []).append(p)
    for product, lines in by_product.items():
        title = "core flows (every channel product)" if product == CORE else f"`{product}`"
        out += [f"### {title}", "",
                *_table(("operation", "account", "Dr/Cr", "amount"),
                        [(p.operation, f"`{p.account}`", p.side, p.amount) for p in lines]), ""]
    return out[:-1]


def _checks() -> list[str]:
    """Each family's invariants and metrics (sim/checks/), usable in a scenario's
    `[expectations]` like the core ones of docs/scenarios.md."""
    out = ["## Checks", "",
           "What the oracle verifies for each product family, and the metrics a scenario's "
           "`[expectations]` may name (a run without the product passes them vacuously).", ""]
    for family in checks.FAMILIES:
        invariants = getattr(family, "INVARIANTS", {}) or {}
        metrics = getattr(family, "METRICS", {}) or {}
        if not invariants and not metrics:
            continue
        name = family.__name__.rsplit(".", 1)[-1]
        out += [f"### {name}", "",
                *_table(("name", "kind", "meaning"),
                        [(f"`{k}`", "invariant", v.description) for k, v in invariants.items()]
                        + [(f"`{k}`", "metric", v.description) for k, v in metrics.items()]), ""]
    return out[:-1]


def render() -> str:
    """The whole page (Markdown), newline-terminated."""
    parts = [["# Products", "",
              "Generated by `.venv/bin/python -m sim.products_doc > docs/products.md` from the "
              "tables of the code (product families in `paysys/products/`, channel kinds in "
              "`sim/kinds/`, journeys in `sim/journeys/`); do not edit by hand: "
              "`tests/test_products_doc.py` fails when this page and the code disagree."],
             _products(), _kinds(), _orders(), _postings(), _checks()]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
