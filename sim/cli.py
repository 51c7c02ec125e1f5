"""The `paysim` command: run a scenario, run a suite, benchmark, render a report, trace an order.

Every command is a thin wrapper over a library function (`sim.runner.run`, `sim.bench.bench`,
`reports.render.render`, `reports.junit.write_junit`, `reports.trace_text.trace`) and carries an
example in its help.
Exit codes: 0 when every expectation holds, 1 when one fails (or the system under test
crashed), 2 on bad input (unknown file, invalid scenario, bad option).
"""

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from reports.junit import write_junit
from reports.render import render
from reports.suite import render_suite
from reports.trace_text import TraceError, as_json, lines, plain, trace
from sim.scenario import ScenarioError, load
from sim.world import NodeCrash

OK, FAILED, BAD_INPUT = 0, 1, 2
MIN_BENCH_PAYMENTS = 100

RUN_EXAMPLES = """examples:
  paysim run scenarios/smoke.toml
  paysim run scenarios/bank-timeouts.toml --seed 7 --db out/bt.db --report out/bt.html
  paysim run scenarios/smoke.toml --json | jq .invariants
"""
SUITE_EXAMPLES = """examples:
  paysim suite scenarios
  paysim suite scenarios --junit out/junit.xml --out out/
"""
BENCH_EXAMPLES = """examples:
  paysim bench
  paysim bench --payments 20000 --json
"""
VALIDATE_EXAMPLES = """examples:
  paysim validate scenarios/smoke.toml
  paysim validate scenarios/*.toml
"""
FUZZ_EXAMPLES = """examples:
  paysim fuzz --budget 200 --seed 1
  paysim fuzz --budget 50 --flaw timeout_as_failure --out out/fuzz
  paysim fuzz --base scenarios/fault-storm.toml --budget 20 --seed 7
  seq 1 8 | xargs -P 2 -I{} paysim fuzz --budget 500 --seed {} --out out/fuzz
"""
REPORT_EXAMPLES = """examples:
  paysim report out/smoke.db
  paysim report out/smoke.db --out /tmp/smoke.html
  paysim report out/smoke.db --order P0000000042 --order R0000000007
"""
TRACE_EXAMPLES = """examples:
  paysim trace out/smoke.db P0000000042
  paysim trace out/smoke.db R0000000007          # a refund: the story of its order
  paysim trace out/smoke.db P0000000042 --json | jq '.events[] | select(.kind == "ledger.post")'
  paysim trace out/smoke.db P0000000042 | less -R
"""


class BadInput(Exception):
    """Input the user must fix: a missing file, an invalid scenario, a bad option."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what was wrong, and where to read more."""

    def error(self, message: str):
        self.exit(BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paysim",
        description="A payment-system testbed: a complete payment system against simulated banks "
                    "and platforms over a faulty network, verified against the ground truth.",
        epilog="Run 'paysim COMMAND --help' for a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    fmt = argparse.RawDescriptionHelpFormatter

    run = sub.add_parser("run", help="run one scenario and verify it", epilog=RUN_EXAMPLES,
                         formatter_class=fmt,
                         description="Simulate one scenario, verify the run and render its report.")
    run.add_argument("scenario", help="the scenario TOML file")
    run.add_argument("--seed", type=_seed, help="override the scenario's seed")
    run.add_argument("--db", help="the run database to write (default: out/<scenario>.db)")
    run.add_argument("--report", help="the HTML report to write (default: beside the database)")
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    suite = sub.add_parser("suite", help="run every scenario of a folder", epilog=SUITE_EXAMPLES,
                           formatter_class=fmt,
                           description="Run every *.toml of a folder; exit 0 only when all pass.")
    suite.add_argument("folder", help="a folder of scenario TOML files")
    suite.add_argument("--junit", help="write JUnit XML here")
    suite.add_argument("--out", default="out", help="where run databases and reports go (default: out)")
    suite.add_argument("--seed", type=_seed, help="override every scenario's seed")
    suite.add_argument("--json", action="store_true", help="print one JSON list on stdout")

    bench = sub.add_parser("bench", help="measure speed against a bare SimPy skeleton",
                           epilog=BENCH_EXAMPLES, formatter_class=fmt,
                           description="Run N payments through the full flow with a standard fault "
                                       "mix, and a bare SimPy skeleton with the same arrivals and "
                                       "timeouts per payment; print both rates and their ratio.")
    bench.add_argument("--payments", type=int, default=100_000, help="payments to run (default 100000)")
    bench.add_argument("--seed", type=_seed, default=1, help="seed (default 1)")
    bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    validate = sub.add_parser("validate", help="check scenario files without running them",
                              epilog=VALIDATE_EXAMPLES, formatter_class=fmt,
                              description="Load and validate scenario files: one line per file, "
                                          "exit 0 when all are valid, 2 otherwise.")
    validate.add_argument("files", nargs="+", metavar="SCENARIO", help="scenario TOML files")

    fuzz = sub.add_parser("fuzz", help="search generated scenarios for a violation",
                          epilog=FUZZ_EXAMPLES, formatter_class=fmt,
                          description="Swarm testing: Hypothesis generates scenarios (random fault "
                                      "kinds, targets, windows, user behaviour, buggify), runs "
                                      "each and shrinks the first that fails to the smallest; it "
                                      "is written as DIR/fuzz-<seed>-<digest>.toml and re-run "
                                      "from the file. Exit 0: nothing found, 1: found (file "
                                      "written), 2: bad input. See docs/fuzzing.md.")
    fuzz.add_argument("--budget", type=_budget, default=100, metavar="N",
                      help="scenarios to try before giving up (default 100)")
    fuzz.add_argument("--seed", type=_seed, default=0, metavar="S",
                      help="the campaign's seed: same seed, same scenarios (default 0)")
    fuzz.add_argument("--out", default="out/fuzz", metavar="DIR",
                      help="where a found scenario is written (default out/fuzz)")
    fuzz.add_argument("--base", metavar="FILE",
                      help="a scenario file to start from (default: a small fast base)")
    fuzz.add_argument("--flaw", action="append", default=[], metavar="NAME",
                      help="start the payment system with this deliberate flaw (repeatable)")

    report = sub.add_parser("report", help="render the HTML report of a run database",
                            epilog=REPORT_EXAMPLES, formatter_class=fmt,
                            description="Render (again) the self-contained HTML report of a run.")
    report.add_argument("db", help="a run database written by 'paysim run'")
    report.add_argument("--out", help="the HTML file (default: beside the database)")
    report.add_argument("--order", action="append", default=[], metavar="ID",
                        help="trace this pay or refund order first (repeatable)")
    report.add_argument("--traces", type=int, default=300, metavar="N",
                        help="how many payments to trace at most (default 300)")

    tr = sub.add_parser("trace", help="print one order's story from a run database",
                        epilog=TRACE_EXAMPLES, formatter_class=fmt,
                        description="Print the story of one payment order, as the HTML report's "
                                    "trace tells it: every message, state change, risk and route "
                                    "decision, channel request and reply, notification and ledger "
                                    "entry (Dr/Cr lines), of the order, its refunds, its child "
                                    "orders and the product orders naming it, in simulated time "
                                    "(UTC+8). Coloured on a terminal, plain text otherwise.")
    tr.add_argument("db", metavar="RUN_DB", help="a run database written by 'paysim run'")
    tr.add_argument("order", metavar="ORDER_ID",
                    help="a pay order id (P0000000042) or a refund id (R0000000007)")
    tr.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def _at_least(low: int):
    """argparse type: an integer >= `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return parse


_seed = _at_least(0)      # --seed
_budget = _at_least(1)    # --budget


def _load(path: str, seed: int | None):
    if not Path(path).exists():
        raise BadInput(f"{path}: no such scenario file")
    scenario = load(path)
    return scenario.with_seed(seed) if seed is not None else scenario


def _output(path: str, what: str) -> str:
    """`path` as a file this run may write (its folder created), or BadInput saying why not."""
    target = Path(path)
    if target.is_dir():
        raise BadInput(f"{path}: is a folder; expected the {what} file to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(f"{path}: cannot create its folder for the {what}: {err.strerror}") from None
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise BadInput(f"{path}: not writable; expected a place for the {what}")
    return path


def run_one(path: str, seed: int | None, db: str | None, report: str | None,
            out_dir: str = "out", show_progress: bool = False) -> dict:
    """Run one scenario file; the summary dict (the --json object), with the report's path."""
    from sim.runner import run

    scenario = _load(path, seed)
    db = _output(db or str(Path(out_dir) / f"{scenario.name}.db"), "run database")
    report = _output(report or str(Path(db).with_suffix(".html")), "report")
    if show_progress:
        with Progress(TextColumn(f"[bold]{scenario.name}"), BarColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("simulating", total=1)

            def progress(done_ms: int, total_ms: int) -> None:
                bar.update(task, completed=done_ms / total_ms,
                           description=f"{done_ms // 60_000} / {total_ms // 60_000} simulated min")

            result = run(scenario, db, progress)
    else:
        result = run(scenario, db)
    summary = result.summary
    summary["report"] = render(db, report)
    return summary


def _print_run(console: Console, summary: dict) -> None:
    verdict = "[bold green]PASS" if summary["ok"] else "[bold red]FAIL"
    console.print(f"{verdict}[/]  {summary['scenario']}  seed {summary['seed']}  "
                  f"digest {summary['digest'][:16]}  ({summary['wall_s']} s)")
    pays = summary["payments"]
    counts = ", ".join(f"{k} {v}" for k, v in pays["by_status"].items())
    console.print(f"payments: {counts} (total {pays['total']})" if counts else "payments: none")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("expectation")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for e in summary["expectations"]:
        table.add_row(e["name"], "[green]ok" if e["ok"] else "[red]FAILED", e["detail"])
    console.print(table)
    for name, inv in summary["invariants"].items():
        if not inv["ok"] and inv.get("first"):
            console.print(f"[red]{name}[/]: {inv['violations']} violations; first: "
                          f"{inv['first'].get('message', inv['first'])}")
    console.print(f"database: {summary['db']}\nreport:   {summary['report']}", soft_wrap=True)


def cmd_run(args) -> int:
    console = Console()
    summary = run_one(args.scenario, args.seed, args.db, args.report,
                      show_progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_run(console, summary)
    return OK if summary["ok"] else FAILED


def cmd_suite(args) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise BadInput(f"{args.folder}: not a folder")
    if args.junit:
        _output(args.junit, "JUnit XML")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise BadInput(f"{args.folder}: no *.toml scenario files")
    console = Console(stderr=args.json)
    results, bad = [], False
    for path in files:
        try:
            summary = run_one(str(path), args.seed, None, None, out_dir=args.out,
                              show_progress=not args.json and sys.stderr.isatty())
        except (ScenarioError, BadInput, NodeCrash) as err:
            bad = bad or not isinstance(err, NodeCrash)
            what = "the system under test crashed: " if isinstance(err, NodeCrash) else ""
            summary = {"scenario": path.stem, "file": str(path), "ok": False,
                       "error": what + str(err), "expectations": [], "invariants": {},
                       "seed": None, "digest": None, "wall_s": 0, "report": None}
        results.append(summary)
        mark = "[green]PASS" if summary["ok"] else ("[yellow]ERROR" if summary.get("error") else "[red]FAIL")
        console.print(f"{mark}[/] {path}")
    table = Table(title="paysim suite", header_style="bold")
    for column in ("scenario", "verdict", "payments", "succeeded", "expectations", "seconds"):
        table.add_column(column, no_wrap=True)
    for r in results:
        if r.get("error"):
            table.add_row(r["scenario"], "[yellow]ERROR", "", "", "", "")
            continue
        passed = sum(e["ok"] for e in r["expectations"])
        table.add_row(r["scenario"], "[green]PASS" if r["ok"] else "[red]FAIL",
                      str(r["payments"]["total"]), str(r["payments"]["by_status"].get("SUCCEEDED", 0)),
                      f"{passed}/{len(r['expectations'])}", str(r["wall_s"]))
    console.print(table)
    for r in results:
        if r.get("error"):
            console.print(f"[yellow]{r['file']}[/]: {r['error']}", soft_wrap=True)
        elif not r["ok"]:
            first = next(e for e in r["expectations"] if not e["ok"])
            console.print(f"[red]{r['scenario']}[/]: {first['name']}: {first['detail']}", soft_wrap=True)
    index = render_suite(results, str(Path(args.out) / "index.html"))
    console.print(f"suite report: {index}", soft_wrap=True)
    if args.junit:
        console.print(f"JUnit XML:    {write_junit(results, args.junit)}", soft_wrap=True)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    if bad:
        return BAD_INPUT
    return OK if all(r["ok"] for r in results) else FAILED


def cmd_bench(args) -> int:
    from sim.bench import bench, print_bench

    if args.payments < MIN_BENCH_PAYMENTS:
        raise BadInput(f"--payments: expected at least {MIN_BENCH_PAYMENTS} (a rate needs a sample), "
                       f"got {args.payments}")
    figures = bench(args.payments, args.seed, progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_bench(Console(), figures)
    return OK


def _check_run_database(path: str) -> None:
    if not Path(path).is_file():
        raise BadInput(f"{path}: no such run database")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as err:
        raise BadInput(f"{path}: not a run database ({err})") from None
    if not tables & {"run", "pay_orders", "events"}:
        raise BadInput(f"{path}: not a run database (no run, pay_orders or events table)")


def cmd_report(args) -> int:
    _check_run_database(args.db)
    if args.traces < 0:
        raise BadInput(f"--traces: expected a number >= 0, got {args.traces}")
    out = _output(args.out or str(Path(args.db).with_suffix(".html")), "report")
    print(render(args.db, out, max_traces=args.traces, orders=tuple(args.order)))
    return OK


def cmd_trace(args) -> int:
    try:
        story = trace(args.db, args.order)
    except TraceError as err:
        raise BadInput(str(err)) from None
    if args.json:
        print(json.dumps(as_json(story), indent=2, ensure_ascii=False, default=str))
    elif sys.stdout.isatty():
        console = Console(highlight=False, soft_wrap=True)
        for line in lines(story):
            console.print(Text.assemble(*((text, style or "") for text, style in line)))
    else:
        sys.stdout.write(plain(story))
    return OK


def cmd_validate(args) -> int:
    bad = 0
    for path in args.files:
        try:
            scenario = _load(path, None)
        except (ScenarioError, BadInput) as err:
            bad += 1
            print(f"invalid  {err}")
            continue
        print(f"valid    {path}: {scenario.name}, seed {scenario.seed}, {len(scenario.channels)} "
              f"channels, {len(scenario.faults)} faults, {len(scenario.expectations.invariants)} "
              f"invariants and {len(scenario.expectations.metrics)} metric thresholds expected")
    return BAD_INPUT if bad else OK


def cmd_fuzz(args) -> int:
    from paysys.flaws import FLAWS
    from sim import fuzz

    try:
        fuzz.check_out_dir(args.out)
    except ValueError as err:
        raise BadInput(f"--out: {err}") from None
    for flaw in args.flaw:
        if flaw not in FLAWS:
            raise BadInput(f"--flaw: unknown flaw {flaw!r}; expected one of {', '.join(FLAWS)}")
    base = None
    if args.base:
        if not Path(args.base).exists():
            raise BadInput(f"{args.base}: no such scenario file")
        base = fuzz.load_base(args.base)
    command = " ".join(["paysim fuzz", f"--seed {args.seed}", f"--budget {args.budget}",
                        *([f"--base {args.base}"] if args.base else []),
                        *(f"--flaw {f}" for f in args.flaw)])
    console = Console(stderr=True)
    console.print(f"{command}: up to {args.budget} scenarios", soft_wrap=True)
    shown = {"at": 0.0, "phase": ""}

    def progress(phase: str, examples: int, shrinks: int, elapsed: float) -> None:
        if phase != shown["phase"] or elapsed - shown["at"] >= 5:
            what = (f"{examples} scenarios run" if phase == "search" else
                    f"violation after {examples} scenarios; shrinking: {shrinks} runs")
            console.print(f"  {elapsed:6.1f} s  {what}")
            shown.update(at=elapsed, phase=phase)

    campaign = fuzz.fuzz(args.budget, args.seed, args.out, base, tuple(args.flaw),
                         progress=progress, command=command)
    found = campaign.finding
    if found is None:
        print(f"nothing found: {campaign.examples} scenarios, every invariant held "
              f"({campaign.elapsed_s} s)")
        return OK
    print(f"FOUND after {campaign.examples} scenarios, shrunk in {campaign.shrink_runs} runs "
          f"from {found.first_faults} faults to {found.faults} ({campaign.elapsed_s} s)")
    print(f"failed:    {'; '.join(found.failed)}")
    print(f"scenario:  {found.path}")
    if found.reproduced:
        print(f"reproduces: the file fails the same way, digest {found.digest[:16]}")
    else:
        print(f"does NOT reproduce from the file: {'; '.join(found.replay_failed) or 'ok'}, "
              f"digest {found.replay_digest[:16]} (was {found.digest[:16]})")
    return FAILED


COMMANDS = {"run": cmd_run, "suite": cmd_suite, "bench": cmd_bench, "report": cmd_report,
            "validate": cmd_validate, "fuzz": cmd_fuzz, "trace": cmd_trace}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return BAD_INPUT if exit_.code else OK
    try:
        return COMMANDS[args.command](args)
    except (ScenarioError, BadInput) as err:
        print(f"paysim: error: {err}", file=sys.stderr)
        return BAD_INPUT
    except NodeCrash as err:
        print(f"paysim: the system under test crashed: {err}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print("paysim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
