"""The product catalogue: every product and money movement beyond the core pay and refund flows.

Each module of `MODULES` is one product family. It exposes the same small surface (every name
optional), which the engine, the gateway, the store and the docs merge into their own tables, the
way `paysys/backoffice.py` does for the calendar jobs:

| name | what | merged into |
|---|---|---|
| `API` | merchant request type -> handler `(node, src, body, now_ms)` | `engine.MERCHANT_API` |
| `FIELDS` | merchant request type -> `{field: validation.Rule}` (its own fields; the common ones are added) | `validation.FIELDS` |
| `FLOWS`, `TIMEOUTS`, `REFUSED` | channel operation -> handler of its answer, timeout, refusal | `engine.FLOWS` ... |
| `TIMERS` | timer kind -> `(node, key, arg, now_ms)` | `engine.TIMERS` |
| `CLASSIFY` | channel operation -> `classify(reply) -> Outcome`, for the family's own operations at any channel | `engine` (ahead of the adapter's table) |
| `REPLY_OPS` | channel reply type -> operation, for answers that carry no request id of ours | `engine.REPLY_OPS` |
| `ORDERS` | order kind -> `(table, id column, state table, final statuses)` | `orders.TABLES`, `store` |
| `SCHEMA` | SQL statements creating the family's tables (`CREATE TABLE IF NOT EXISTS`) | `store.open_store` |
| `INTERNAL` | pay.create product served inside paysys -> `Internal` (no channel) | `payments.create`, `refunds` |
| `PARENTS` | id prefix of the family's orders -> `on_child_final(node, child, now_ms)`, called when a pay order whose `parent_id` has that prefix is final (a leg, an attempt, a top-up's charge; may be called again if a late charge reopens it) | `payments.finished` |
| `POSTINGS` | `Posting` rows: which accounts move for every operation (docs/products.md) | the docs |
| `recover(node, now_ms)` | re-arm timers after a restart | `engine.recover` |
| `arm(node, now_ms)` | first unit of work of a node: arm the family's calendar timers | `engine._housekeeping` |
"""

from paysys import orders, store, validation
from paysys.products import (
    accounts,
    chart,  # noqa: F401  (the shared account families)
    combined,
    foreign,
    mandates,
    movements,
    netbank,
    preauth,
    quick,
    trade,
)
from paysys.products.base import Internal, Posting

__all__ = ["MODULES", "Internal", "Posting", "every", "merged", "postings", "schema"]

MODULES = (quick, netbank, mandates, preauth, foreign, accounts, movements, combined, trade)


def merged(name: str) -> dict:
    """The union of every module's dict `name` (a name defined twice is an error)."""
    out: dict = {}
    for module in MODULES:
        table = getattr(module, name, None) or {}
        clash = set(out) & set(table)
        if clash:
            raise RuntimeError(f"paysys.products: {name} {sorted(clash)} defined twice "
                               f"(again in {module.__name__})")
        out.update(table)
    return out


def every(name: str) -> list:
    """Every module's function `name` (recover, arm), in catalogue order."""
    return [getattr(m, name) for m in MODULES if callable(getattr(m, name, None))]


def postings() -> list[Posting]:
    return [p for m in MODULES for p in getattr(m, "POSTINGS", ())]


def schema() -> list[str]:
    return [sql for m in MODULES for sql in getattr(m, "SCHEMA", ())]


for _kind, (_table, _key, _transitions, _final) in merged("ORDERS").items():
    orders.register(_kind, _transitions, _final)
    store.register_orders(_kind, _table, _key)
for _type, _fields in merged("FIELDS").items():
    if _type in validation.FIELDS:
        raise RuntimeError(f"paysys.products: request type {_type!r} is already validated")
    validation.FIELDS[_type] = {**validation.COMMON, **_fields}
