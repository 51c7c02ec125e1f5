"""Deliberate flaws: the payment system can be started without one of its safety mechanisms.

Trainers use them to show why each mechanism exists; QA uses them to prove the oracle catches
what each mechanism prevents (every flaw has a scenario under `scenarios/flaws/` that must fail).
A flaw is a name in `PaySysConfig.flaws`; the code that owns the mechanism asks
`node.flawed(name)` and, when it is set, behaves as the naive system would. Nothing else changes.
"""

FLAWS: dict[str, str] = {
    "no_idempotency": "the gateway neither reserves nor replays idempotency keys, and a merchant "
                      "order number already used starts a new payment: retried requests act twice",
    "no_cas": "order updates are blind writes (no `WHERE status = expected`) and a handler acts on "
              "the order whatever its state: a duplicate or late answer is applied again",
    "timeout_as_failure": "a channel timeout fails the payment instead of making it UNKNOWN",
    "no_notify_dedupe": "a channel notification is not matched to the charge it reports: a repeat "
                        "of one charge is taken for a second charge and refunded",
    "trust_notified_amount": "the amount a channel reports is not compared with the order's: a "
                             "payment of another amount is marked paid",
    "no_query": "no query compensation: an UNKNOWN payment waits for a notification that may "
                "never come",
    "no_outbox": "requests to channels and domain events (order.final, refund.final) leave at "
                 "once (fire and forget) instead of through the transactional outbox: a crash "
                 "after the commit loses them for good, one before it sends what was never saved",
    "no_signature_check": "channel notifications are not verified: a forged one marks an order "
                          "paid",
}
