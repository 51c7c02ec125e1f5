"""The architecture's rules, checked on the source: import-linter's contracts (pyproject.toml)
hold, and an AST scan of paysys/ and mockbanks/ finds no wall clock, no global random, no
socket, asyncio, SimPy or simulator import, and no file over 600 lines (docs/architecture.md,
../shared/DESIGN.md)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTICIPANTS = ("paysys", "mockbanks")
FILES = sorted(p for package in PARTICIPANTS for p in (ROOT / package).rglob("*.py"))
MAX_LINES = 600

FORBIDDEN_MODULES = {"time", "socket", "asyncio", "simpy", "sim"}
WALL_CLOCKS = {"now", "utcnow", "today", "fromtimestamp", "utcfromtimestamp"}
CLOCK_OWNERS = {"datetime", "date", "dt"}
RANDOM_ALLOWED = {"Random"}  # a random.Random received in the constructor is the rule


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def violations(source: str, own: str) -> list[str]:
    """What in `source`, a module of package `own`, breaks the sans-IO rules, as "line: what"."""
    tree = ast.parse(source)
    other = next(p for p in PARTICIPANTS if p != own)
    found = []
    random_names = set()  # names bound to the random module in this file
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN_MODULES | {other, "reports"}:
                    found.append(f"{node.lineno}: import {alias.name}")
                if alias.name == "random":
                    random_names.add(alias.asname or "random")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_MODULES | {other, "reports"}:
                found.append(f"{node.lineno}: from {node.module} import ...")
            if node.module == "random":
                found += [f"{node.lineno}: from random import {a.name}"
                          for a in node.names if a.name not in RANDOM_ALLOWED]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        owner_name = owner.id if isinstance(owner, ast.Name) else (
            owner.attr if isinstance(owner, ast.Attribute) else None)
        if node.attr in WALL_CLOCKS and owner_name in CLOCK_OWNERS:
            found.append(f"{node.lineno}: wall clock {owner_name}.{node.attr}")
        if isinstance(owner, ast.Name) and owner.id in random_names and node.attr not in RANDOM_ALLOWED:
            found.append(f"{node.lineno}: global random {owner.id}.{node.attr}")
    return found


def test_the_scan_finds_what_it_looks_for():
    source = (
        "import time\nimport random\nimport datetime as dt\nfrom socket import socket\n"
        "import mockbanks.bank\nfrom random import randint\nimport simpy\nfrom sim import world\n"
        "def f(rng: random.Random):\n"
        "    return random.random() + random.randint(1, 2) + time.time() + dt.datetime.now().x"
        " + dt.date.today().x + rng.random()\n"
    )
    found = violations(source, "paysys")
    text = "\n".join(found)
    for expected in ("import time", "from socket", "import mockbanks.bank", "from sim import",
                     "from random import randint", "import simpy", "random.random",
                     "random.randint", "datetime.now", "date.today"):
        assert expected in text, (expected, found)
    assert "random.Random" not in text and "rng.random" not in text


def test_participant_files_exist():
    assert len(FILES) > 10
    assert {p.relative_to(ROOT).parts[0] for p in FILES} == set(PARTICIPANTS)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_participant_is_sans_io(path):
    assert violations(path.read_text(encoding="utf-8"), path.relative_to(ROOT).parts[0]) == []


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_participant_file_is_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it"
