"""The names a scenario's expectations may use: invariants the oracle checks and metrics it computes.

One table each, name -> what it means. The scenario loader validates names against these, the
oracle computes them, and `docs/scenarios.md` lists them.
"""

INVARIANTS: dict[str, str] = {
    "entries_balanced": "every journal entry has equal debits and credits per currency",
    "trial_balance_zero": "the sum of all postings is zero per currency",
    "external_matches_ledger": "every external (single-entry) balance equals its ledger account",
    "conservation": "the money in the whole world (every bank and platform account) is unchanged",
    "channel_matches_truth": "what paysys believes it holds at each channel equals the channel's ground truth",
    "orders_match_truth": "every order's final state agrees with what the channel really did: "
                          "a SUCCEEDED order keeps charges of its amount, a FAILED, CLOSED, "
                          "BLOCKED or DUPLICATE one keeps none, a HELD one keeps what it received; "
                          "every refund SUCCEEDED exactly when the channel refunded it",
    "no_double_charge": "no user is charged twice net for one merchant order, over all its "
                        "attempts, nor for one payment order",
    "no_charge_without_order": "no money stays at a channel without a paysys order that keeps "
                               "it (SUCCEEDED or HELD) or a refund order that succeeded",
    "orders_final": "after the faults stop and the grace period, every order is final",
    "notifications_settled": "after the grace period, every merchant notification is acknowledged or dead-lettered",
    "duplicates_refunded": "every charge an order does not keep is refunded (once), and no "
                           "compensation refund takes back the charge an order keeps",
    "idempotency": "each idempotency key has at most one effect: one payment order per key, "
                   "one refund order per refund number, one succeeded attempt per merchant order",
    "outbox_drained": "at the end, every outbox message has been delivered",
    "events_published": "every final order and refund published its domain event (order.final, refund.final) at least once",
    "recon_exact": "statement reconciliation has precision and recall 1: every break the injected "
                   "statement faults and the ground truth call for (channel, key, class) was "
                   "found, none other; faults on files the run never reconciled are not due yet",
    "recon_resolved": "every statement break is resolved or left to a person as the resolution "
                      "policy says for its class (none open); a refund or completion names its "
                      "journal entry",
    "settlement_exact": "per merchant settled: what it was paid plus what it is still owed equals "
                        "its payments minus refunds, fees and splits out, plus splits in; its bank "
                        "account received exactly its paid settlements; each settlement statement "
                        "adds up and carries over into the next",
    "books_closed_daily": "every accounting day from the first to the last is closed, balanced, "
                          "with the debits and credits of the postings before its cut-off and "
                          "the digest of its entries",
    "profit_matches": "the ledger's fee income minus channel costs equals the orders' fees minus "
                      "the fees the channels really took, and the closed days' profits add up "
                      "to it",
    "reserve_matches_truth": "what paysys believes its reserve at a channel holds equals the "
                             "channel's ground truth",
}

METRICS: dict[str, str] = {
    "payments": "payment orders created",
    "succeeded": "payment orders that succeeded",
    "success_rate": "succeeded / payment orders that reached a channel",
    "failed": "payment orders that failed",
    "closed": "payment orders closed unpaid",
    "blocked": "payment orders blocked by risk",
    "challenged": "payment orders challenged by risk (OTP)",
    "rejected": "merchant requests rejected by the gateway",
    "refunds": "refund orders created",
    "refunds_succeeded": "refund orders that succeeded",
    "unknown": "payment orders that went through UNKNOWN",
    "unknown_resolved": "payment orders that went through UNKNOWN and ended final",
    "queries": "status queries sent to channels",
    "late_replies": "channel replies that came after paysys gave up waiting",
    "channel_notifications": "payment notifications received from channels",
    "duplicate_channel_notifications": "channel notifications for an order already final",
    "notifications_acked": "merchant notifications acknowledged",
    "notifications_dead": "merchant notifications dead-lettered",
    "notification_retries": "merchant notification attempts after the first",
    "failovers": "payments moved to another channel after theirs refused the connection",
    "faults_fired": "messages a fault acted on",
    "idempotent_replays": "merchant requests answered from the idempotency store",
    "crashes": "times paysys crashed (a crash fault)",
    "recoveries": "times paysys recovered after a restart",
    "compensation_refunds": "refund orders paysys made itself to give back a charge no order "
                            "keeps (duplicate, double charge, late success, partial payment)",
    "held": "payment orders HELD: money came but not as ordered",
    "duplicates": "payment orders DUPLICATE: paid after another attempt of the same merchant "
                  "order succeeded",
    "amount_mismatches": "charges reported with another amount than the order's",
    "forged_rejected": "channel notifications rejected for a bad signature",
    "late_charges": "charges reported for an order already final",
    "attempts": "payment orders that are a second or later attempt of a merchant order",
    "faults_acted": "times any fault acted (network, channel, merchant, user, crash)",
    "cas_conflicts": "state changes that lost a compare-and-set race",
    "recon_injected": "statement faults the channels injected (rows of stmt_injected)",
    "recon_expected": "statement breaks the oracle expected (injected and natural, on files "
                      "the run reconciled)",
    "recon_found": "statement breaks paysys found (distinct channel, key and class; those of "
                   "files the run never reconciled left out)",
    "recon_true_positive": "expected statement breaks paysys found with the right class",
    "recon_precision": "found breaks that were expected / found breaks (1.0 when none found)",
    "recon_recall": "expected breaks that were found / expected breaks (1.0 when none expected)",
    "recon_unresolved": "reconciliation breaks (statement and stream) still open",
    "recon_manual": "reconciliation breaks left to a person (status manual)",
    "recon_files": "statement files reconciled",
    "recon_files_missing": "statement files declared missing",
    "recon_not_reached": "injected statement faults on files the run never reconciled",
    "stream_breaks": "breaks found by the stream reconciliation (phase stream)",
    "settlements_paid": "merchant settlements paid",
    "settled_amount": "money paid out to merchants by settlements (minor units)",
    "settlement_batches": "settlement batches created",
    "days_closed": "accounting days closed",
    "reserve_topups": "times the payout channel's position was topped up from the reserve",
}


def _families() -> None:
    """Add the product families' checks and metrics (sim/checks/) to the tables."""
    from sim import checks  # (its modules do not import this one)
    for name, inv in checks.INVARIANTS.items():
        INVARIANTS[name] = inv.description
    for name, metric in checks.METRICS.items():
        METRICS[name] = metric.description


_families()
