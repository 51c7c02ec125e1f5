"""The account families the product families share, added to the ledger's chart.

- `liability:user:<user_id>`: a user's stored value (余额) at the platform, in any currency,
  mirrored onto the single-entry external account `user:<user_id>`, never below zero.
Each family registers the accounts only it uses in its own module (ledger.register_family).
"""

from paysys import ledger

ledger.register_family("liability:user", "liability", "credit", sub="user_id", external="user:")
