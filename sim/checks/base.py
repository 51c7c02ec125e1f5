"""The shapes of a product family's oracle checks (sim/checks/__init__.py)."""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (name,)).fetchone() is not None


@dataclass(frozen=True)
class Invariant:
    """`check(conn) -> [violation]` (each a dict with `ref`, `message`, and `diff` when money is
    involved: see sim/invariants.py); `tables`: those every run has that it reads (its own
    product tables may be absent: then it passes)."""

    description: str
    check: Callable[[sqlite3.Connection], list[dict]]
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Metric:
    """`value(conn) -> int | float`, 0 on a run without the product."""

    description: str
    value: Callable[[sqlite3.Connection], int | float]
