"""What becomes of a reconciliation break (contract issue 5, §4 "Resolution policy"). Pure.

`decide(brk, known_ref)` looks the break's class up in `POLICY` and returns a `Decision`: the
status the break is recorded with (`resolved` at once, `open` while something is under way,
`manual` for a person), its resolution, a reason for humans, and the action the flow must take:

| class | status | resolution | action |
|---|---|---|---|
| `cross_day` | resolved | `matched_next_file` | none |
| `channel_only`, paysys knows the order | open | (set when the query answers) | `query` |
| `channel_only`, unknown ref | manual | `manual` | none |
| `platform_only`, `amount_*`, `status`, `fee`, `currency` | manual | `statement_error` | none |
| `fee`, under `[recon] fees = "adjust"` | resolved | `adjusted` | `adjust` (the books follow the statement's fee: 调账) |
| `malformed_file` | open | (`redownloaded` when a good copy arrives) | `redownload` |
| `late_file` | resolved | `late_file_received` | none |
| `missing_file` | manual | `no_file` | none |

The books never follow a statement that the channel's own signed online answers contradict: for
the row-level differences paysys asks the channel for a corrected file.
"""

from typing import NamedTuple

from paysys.recon.match import Break

_CORRECTED = "; our books hold the channel's own signed report: a corrected file is asked for"

# cls -> (status, resolution, reason template); the template formats Break fields
POLICY: dict[str, tuple[str, str, str]] = {
    "cross_day": ("resolved", "matched_next_file", "{key}: {detail}"),
    "channel_only": ("manual", "manual", "{key}: {detail}; no order of ours: for a person"),
    "platform_only": ("manual", "statement_error", "{key}: {detail}" + _CORRECTED),
    "amount_over": ("manual", "statement_error", "{key}: {detail}" + _CORRECTED),
    "amount_under": ("manual", "statement_error", "{key}: {detail}" + _CORRECTED),
    "status": ("manual", "statement_error", "{key}: {detail}" + _CORRECTED),
    "fee": ("manual", "statement_error", "{key}: {detail}" + _CORRECTED),
    "currency": ("manual", "statement_error", "{key}: {detail}" + _CORRECTED),
    "malformed_file": ("open", "", "{key}: {detail}; downloaded again"),
    "late_file": ("resolved", "late_file_received", "{key}: {detail}"),
    "missing_file": ("manual", "no_file", "{key}: {detail}; no file from the channel"),
}
# a channel_only row of an order paysys knows: the order is queried at the channel
KNOWN_CHANNEL_ONLY = ("open", "", "{key}: {detail}; our order {ref}: queried at the channel")
ACTIONS: dict[str, str] = {"malformed_file": "redownload"}   # every other class: "none"
# a fee break when the statement is authoritative for fees (the channel nets them): adjust
ADJUSTED_FEE = ("resolved", "adjusted", "{key}: {detail}; the books follow the statement's fee")


class Decision(NamedTuple):
    status: str       # "resolved" | "open" | "manual"
    resolution: str   # "" while open
    reason: str
    action: str       # "none" | "query" | "redownload" | "adjust"


def decide(brk: Break, known_ref: bool, adjust_fees: bool = False) -> Decision:
    """The decision on break `brk`; `known_ref`: paysys knows the order or refund of its row;
    `adjust_fees`: the books follow a statement's fees (`[recon] fees = "adjust"`)."""
    if brk.cls not in POLICY:
        raise ValueError(f"cls: expected one of {sorted(POLICY)}, got {brk.cls!r}")
    row = brk.theirs or brk.ours
    ref = row.ref if row is not None else ""
    if brk.cls == "channel_only" and known_ref:
        status, resolution, template = KNOWN_CHANNEL_ONLY
        action = "query"
    elif brk.cls == "fee" and adjust_fees:
        status, resolution, template = ADJUSTED_FEE
        action = "adjust"
    else:
        status, resolution, template = POLICY[brk.cls]
        action = ACTIONS.get(brk.cls, "none")
    reason = template.format(key=brk.key, detail=brk.detail, ref=ref)
    return Decision(status, resolution, reason, action)
