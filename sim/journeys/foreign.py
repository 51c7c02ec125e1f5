"""Foreign card payments (外卡支付): the default journey (a `pay.create` of product "foreign",
the buyer approves the PayPal-like platform's link, or walks away), and the product's table:

    [products.foreign]
    settle_currency = "USD"                  # what the platform settles in (default USD)
    rates = {"CNY/USD" = "0.1389"}           # decimal STRINGS, never floats: 1 CNY = 0.1389 USD

Rates become integer parts per million (paysys/products/foreign.py parse_rate); each pair must
end in the settle currency. Without the table the payment system uses DEFAULT_RATES.
"""

from paysys.products.foreign import DEFAULT_RATES, ForeignError, ForeignSettings, parse_rate
from sim.journeys.base import Journey


def options(parser, value, key: str) -> dict:
    """`[products.foreign]` -> {"settle_currency": str, "rates": {pair: ppm}}."""
    if not isinstance(value, dict):
        raise parser.fail(key, "expected a table", value)
    parser.known(value, key, ("settle_currency", "rates"))
    settle = parser.string(value.get("settle_currency", "USD"), f"{key}.settle_currency",
                           choices=("CNY", "USD", "EUR", "HKD", "JPY"))
    raw = value.get("rates", DEFAULT_RATES)
    if not isinstance(raw, dict) or not raw:
        raise parser.fail(f"{key}.rates", 'expected a table of rates such as {"CNY/USD" = '
                          '"0.1389"}', raw)
    rates = {}
    for pair, text in raw.items():
        where = f'{key}.rates."{pair}"'
        source, _, target = pair.partition("/")
        if not source or target != settle:
            raise parser.fail(where, f'expected a pair "<currency>/{settle}" (into the '
                              "settle currency)", pair)
        try:
            rates[pair] = parse_rate(text, where)
        except ForeignError:
            raise parser.fail(where, 'expected a decimal string > 0 with at most 6 decimals, '
                              'such as "0.1389" (never a float)', text) from None
    try:
        ForeignSettings(settle, rates)
    except ForeignError as err:
        raise parser.fail(f"{key}.rates", str(err), raw) from None
    return {"settle_currency": settle, "rates": rates}


def paysys(opts: dict | None) -> ForeignSettings:
    """The payment system's settings (node.cfg.products["foreign"])."""
    if opts is None:
        return ForeignSettings.parse("USD", DEFAULT_RATES)
    return ForeignSettings(opts["settle_currency"], dict(opts["rates"]))


JOURNEYS = {"foreign": Journey(start=None, needs=("foreign",), options=options, paysys=paysys)}
