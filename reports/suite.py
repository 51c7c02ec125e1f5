"""The index page of a suite run: one line per scenario, linking to its report.

Takes the CLI's `--json` summary dicts (as `junit.py` does), not live objects: a self-contained
HTML page with the suite's verdict, each scenario's verdict, payments, expectations held, the
first failure, and a relative link to the scenario's own report; when any scenario measured
reconciliation (metrics `recon_precision` / `recon_recall`), a column shows them.

    render_suite(results, "out/index.html")   # -> "out/index.html"
"""

from __future__ import annotations

import os
from pathlib import Path

from . import _format as fmt
from .render import TEMPLATES, _env

RECON = ("recon_precision", "recon_recall")


def _recon(metrics: object) -> dict | None:
    """Precision and recall of reconciliation, formatted; None when the run measured neither."""
    if not isinstance(metrics, dict) or not any(metrics.get(k) is not None for k in RECON):
        return None
    return {k.split("_")[1]: "—" if metrics.get(k) is None else fmt.number(metrics[k])
            for k in RECON}


def _row(result: dict, out_dir: Path) -> dict:
    expectations = result.get("expectations") or []
    failed = [e for e in expectations if not e.get("ok")]
    report = result.get("report")
    payments = result.get("payments") or {}
    return {
        "scenario": result.get("scenario", "?"),
        "file": result.get("file", ""),
        "seed": result.get("seed"),
        "digest": (result.get("digest") or "")[:16],
        "verdict": "ERROR" if result.get("error") else ("PASS" if result.get("ok") else "FAIL"),
        "error": result.get("error"),
        "payments": payments.get("total"),
        "succeeded": (payments.get("by_status") or {}).get("SUCCEEDED", 0),
        "held": len(expectations) - len(failed),
        "expectations": len(expectations),
        "first_failure": failed[0] if failed else None,
        "wall_s": result.get("wall_s"),
        "link": os.path.relpath(report, out_dir) if report else None,
        "recon": _recon(result.get("metrics")),
    }


def render_suite(results: list[dict], out_path: str, title: str = "paysim suite") -> str:
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [_row(r, out.parent) for r in results]
    html = _env().get_template("suite.html").render(
        title=title, rows=rows, ok=all(r["verdict"] == "PASS" for r in rows),
        recon=any(r["recon"] for r in rows),
        css=(TEMPLATES / "report.css").read_text(encoding="utf-8"),
    )
    out.write_text(html, encoding="utf-8")
    return str(out)
