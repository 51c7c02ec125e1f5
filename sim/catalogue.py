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
}
