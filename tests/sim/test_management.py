"""Management data: channel daily limits and announced maintenance windows (scenario keys, the
router, the run database), merchants' business applications (keys, fee rates, the gateway's
signature check), and the channel QoS view.

The router property (Hypothesis): whatever the windows, limits, amounts and times, a payment is
never routed to a channel inside one of its maintenance windows, nor over its daily limit."""

import datetime as dt
import sqlite3

import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from paysys import days, idempotency, replay, store
from paysys.config import ChannelConfig
from paysys.errors import GatewayError
from paysys.gateway import App, Gateway, Merchant
from paysys.money import FeeRule
from paysys.replay import ReplayGuard
from paysys.routing import ChannelHealth, ChannelInfo, Router
from paysys.signing import signed
from sim import population
from sim.runner import paysys_config
from sim.scenario import ScenarioError, loads

HEAD = '[scenario]\nname = "t"\nseed = 1\nduration = "1h"\n'
BANK = '[[channels]]\nid = "bank"\nkind = "bank"\n'
WECHAT = '[[channels]]\nid = "wechat"\nkind = "wechat"\n'
NOW = 1_793_584_800_000          # 2026-11-02T10:00:00+08:00
T10, T1030 = "2026-11-02T10:00:00+08:00", "2026-11-02T10:30:00+08:00"


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        loads(text, "x.toml")
    return info.value


# -- scenario keys ------------------------------------------------------------------------------

def test_keys_parse_and_reach_the_payment_systems_config():
    sc = loads(HEAD + BANK + f'limits = {{min = 1, max = 500000, daily = 2000000}}\n'
               f'maintenance = [["{T10}", "{T1030}"], [2026-11-02T12:00:00+08:00, '
               f'2026-11-02T12:05:00+08:00]]\n' + WECHAT +
               "[merchants]\napps = 2\napp_fee_rates_bp = [30, 90]\n")
    bank = sc.channels[0]
    assert bank.daily_limit == 2_000_000
    assert bank.maintenance == ((_ms(T10), _ms(T1030)), (_ms("2026-11-02T12:00:00+08:00"),
                                                         _ms("2026-11-02T12:05:00+08:00")))
    assert sc.channels[1].daily_limit == 0 and sc.channels[1].maintenance == ()
    assert (sc.merchants.apps, sc.merchants.app_fee_rates_bp) == (2, (30, 90))
    merchants = population.merchants(sc)
    assert [a.app_id for a in merchants[0].apps] == ["A1", "A2"]
    assert [a.fee_rate_bp for a in merchants[1].apps] == [30, 90]
    secrets = {a.secret for m in merchants for a in m.apps} | {m.secret for m in merchants}
    assert len(secrets) == 3 * len(merchants)             # every app has its own key
    cfg = paysys_config(sc, merchants)
    assert cfg.channels[0].daily_limit == 2_000_000 and cfg.channels[0].maintenance == \
        bank.maintenance
    assert cfg.merchants[0].fee_rate("A2") == 90 and cfg.merchants[0].fee_rate("") == 60
    assert merchants[0].signing("A1") == (merchants[0].sign_type, merchants[0].apps[0].secret)
    assert merchants[0].signing(None) == (merchants[0].sign_type, merchants[0].secret)


def test_without_apps_the_merchants_keys_do_not_change():
    plain = loads(HEAD + BANK + WECHAT)
    with_apps = loads(HEAD + BANK + WECHAT + "[merchants]\napps = 1\n")
    a, b = population.merchants(plain), population.merchants(with_apps)
    assert [m.secret for m in a] == [m.secret for m in b]
    assert all(m.apps == () for m in a)
    assert all(app.fee_rate_bp == 60 for m in b for app in m.apps)


BAD = {
    "daily not money": (BANK + "limits = {daily = 1.5}\n", "channels[0].limits.daily",
                        "expected an integer number of minor units (>= 0), got 1.5"),
    "daily below min": (BANK + "limits = {min = 100, daily = 50}\n", "channels[0].limits.daily",
                        "expected 0 (no daily limit) or at least limits.min (100), got 50"),
    "maintenance not a list": (BANK + 'maintenance = "10:00-10:30"\n', "channels[0].maintenance",
                               "expected a list of [start, end] pairs"),
    "window not a pair": (BANK + f'maintenance = [["{T10}"]]\n', "channels[0].maintenance[0]",
                          "expected a list of [start, end] pairs"),
    "window without offset": (BANK + f'maintenance = [["2026-11-02T10:00:00", "{T1030}"]]\n',
                              "channels[0].maintenance[0][0]",
                              "expected a date-time with a UTC offset"),
    "window ends first": (BANK + f'maintenance = [["{T1030}", "{T10}"]]\n',
                          "channels[0].maintenance[0][1]", "expected an end after the window's"),
    "windows overlap": (BANK + f'maintenance = [["{T10}", "{T1030}"], '
                               f'["2026-11-02T10:15:00+08:00", "2026-11-02T11:00:00+08:00"]]\n',
                        "channels[0].maintenance[1][0]", "expected windows in time order"),
    "apps negative": ("[merchants]\napps = -1\n", "merchants.apps",
                      "expected an integer between 0 and 26, got -1"),
    "rates not a list": ("[merchants]\napps = 1\napp_fee_rates_bp = 30\n",
                         "merchants.app_fee_rates_bp", "expected a list of basis points"),
    "rates count": ("[merchants]\napps = 2\napp_fee_rates_bp = [30]\n",
                    "merchants.app_fee_rates_bp", "expected 2 rates (one per app"),
    "rate too high": ("[merchants]\napps = 1\napp_fee_rates_bp = [10001]\n",
                      "merchants.app_fee_rates_bp[0]",
                      "expected an integer between 0 and 10000, got 10001"),
    "unknown limits key": (BANK + "limits = {weekly = 5}\n", "channels[0].limits.weekly",
                           "unknown key; expected one of: min, max, daily"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_each_mistake_names_its_key(case):
    extra, key, message = BAD[case]
    channel_keys = extra.startswith("[[channels]]")
    text = HEAD + extra + WECHAT if channel_keys else HEAD + BANK + WECHAT + extra
    err = _error(text)
    assert err.key == key, str(err)
    assert message in err.message, str(err)
    assert str(err).count("\n") == 0


# -- the router ---------------------------------------------------------------------------------

def _router(infos, used: dict[str, int] | None = None) -> Router:
    used = used if used is not None else {}
    return Router(infos, "priority", ChannelHealth(),
                  usage=lambda channel, since: used.get(channel, 0))


def _info(cid: str, priority: int, **kw) -> ChannelInfo:
    return ChannelInfo(cid, "bank", ("quick",), priority, FeeRule(), **kw)


def test_a_channel_in_maintenance_is_skipped_then_used_again():
    router = _router([_info("a", 1, windows=((NOW, NOW + 60_000),)), _info("b", 2)])
    during = router.route("quick", 100, "CNY", NOW + 1)
    assert during.channel_id == "b"
    assert during.rejected == (("a", f"maintenance window until {NOW + 60_000}"),)
    assert router.route("quick", 100, "CNY", NOW - 1).channel_id == "a"
    assert router.route("quick", 100, "CNY", NOW + 60_000).channel_id == "a"   # [start, end)


def test_the_daily_limit_sends_the_rest_elsewhere_or_nowhere():
    used = {"a": 900}
    router = _router([_info("a", 1, daily_limit=1000), _info("b", 2, daily_limit=500)], used)
    assert router.route("quick", 100, "CNY", NOW).channel_id == "a"          # 900 + 100 = limit
    over = router.route("quick", 101, "CNY", NOW)
    assert over.channel_id == "b" and "daily limit 1000 reached (900 used today)" in \
        dict(over.rejected)["a"]
    used["b"] = 450
    none = router.route("quick", 101, "CNY", NOW)
    assert none.channel_id is None and none.reason == "NO_ROUTE"


def test_the_day_is_the_local_day_utc8():
    seen = []
    router = Router([_info("a", 1, daily_limit=10)], "priority", ChannelHealth(),
                    usage=lambda channel, since: seen.append(since) or 0)
    router.route("quick", 5, "CNY", NOW)
    assert seen == [_ms("2026-11-02T00:00:00+08:00")]


def test_a_daily_limit_without_usage_is_a_configuration_error():
    router = Router([_info("a", 1, daily_limit=10)], "priority", ChannelHealth())
    with pytest.raises(ValueError, match="daily_limit needs the router's usage"):
        router.route("quick", 5, "CNY", NOW)


def test_channel_info_of_a_config_and_bad_windows():
    cfg = ChannelConfig("bank", "bank", ("quick",), daily_limit=7, maintenance=((1, 2),))
    info = ChannelInfo.of(cfg)
    assert (info.daily_limit, info.windows, info.max_amount) == (7, ((1, 2),), cfg.max_amount)
    with pytest.raises(ValueError, match="maintenance window ends"):
        _info("a", 1, windows=((5, 5),))
    with pytest.raises(ValueError, match="daily_limit must be >= 0"):
        _info("a", 1, daily_limit=-1)


_windows = st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 5_000)), max_size=3).map(
    lambda ws: tuple((NOW + s, NOW + s + d) for s, d in ws))


@settings(max_examples=150, deadline=None)
@given(channels=st.lists(st.tuples(st.integers(0, 3_000), _windows), min_size=1, max_size=4),
       payments=st.lists(st.tuples(st.integers(1, 1_500), st.integers(-100, 12_000)),
                         min_size=1, max_size=30))
def test_never_into_a_maintenance_window_nor_over_a_daily_limit(channels, payments):
    infos = [_info(f"c{i}", i, daily_limit=limit, windows=windows)
             for i, (limit, windows) in enumerate(channels)]
    by_id = {c.id: c for c in infos}
    used: dict[str, int] = {}
    router = _router(infos, used)
    for amount, offset in sorted(payments, key=lambda p: p[1]):
        now = NOW + offset
        decision = router.route("quick", amount, "CNY", now)
        chosen = by_id.get(decision.channel_id)
        if chosen is None:
            # nowhere to go: every channel was in maintenance or would go over its limit
            assert all(c.in_maintenance(now) or (c.daily_limit and
                                                 used.get(c.id, 0) + amount > c.daily_limit)
                       for c in infos)
            continue
        assert chosen.in_maintenance(now) is None
        if chosen.daily_limit:
            assert used.get(chosen.id, 0) + amount <= chosen.daily_limit
        used[chosen.id] = used.get(chosen.id, 0) + amount


# -- the run database ---------------------------------------------------------------------------

def test_channels_windows_apps_and_daily_usage_in_the_store():
    conn = store.open_store(":memory:")
    cfg = ChannelConfig("bank", "bank", ("quick",), daily_limit=5000,
                        maintenance=((NOW, NOW + 1000), (NOW + 5000, NOW + 6000)))
    store.insert_channel(conn, cfg)
    assert conn.execute("SELECT daily_limit FROM channels").fetchone() == (5000,)
    assert conn.execute("SELECT * FROM channel_windows ORDER BY start_ms").fetchall() == [
        ("bank", NOW, NOW + 1000), ("bank", NOW + 5000, NOW + 6000)]
    merchant = Merchant("M001", "s", "MD5", 60, apps=(App("A1", "k1", "MD5", 30, "shop"),
                                                      App("A2", "k2", "HMAC-SHA256", 90)))
    store.insert_merchant_apps(conn, merchant)
    assert conn.execute("SELECT * FROM merchant_apps ORDER BY app_id").fetchall() == [
        ("M001", "A1", "shop", "MD5", "k1", 30, "active"),
        ("M001", "A2", "", "HMAC-SHA256", "k2", 90, "active")]
    midnight = days.day_start(days.day_of(NOW))
    for i, (status, created, amount) in enumerate([
            ("SUCCEEDED", NOW, 100), ("PROCESSING", NOW, 20), ("UNKNOWN", NOW, 3),
            ("FAILED", NOW, 1000), ("SUCCEEDED", midnight - 1, 400)]):
        store.insert_pay_order(conn, {
            "order_id": f"P{i}", "merchant_id": "M001", "merchant_order_no": f"o{i}",
            "user_id": "U1", "product": "quick", "channel": "bank", "amount": amount,
            "currency": "CNY", "status": status, "merchant_fee": 0, "channel_cost": 0,
            "refunded": 0, "created_ms": created, "updated_ms": created})
    assert store.routed_since(conn, "bank", midnight) == 123      # yesterday's and failed: out
    assert store.routed_since(conn, "wechat", midnight) == 0


def test_channel_qos_view_counts_what_paysys_observed():
    conn = store.open_store(":memory:")
    for req_id, status, result, latency in [("a", "answered", "success", 100),
                                            ("b", "answered", "failure", 300),
                                            ("c", "answered", "unknown", 50),
                                            ("d", "timeout", "", None), ("e", "refused", "refused",
                                                                        None)]:
        store.record_request(conn, req_id, "bank", "pay", "P1", NOW)
        store.close_request(conn, req_id, status, result, NOW + (latency or 3000))
    store.record_request(conn, "f", "bank", "pay", "P2", NOW)          # still pending
    conn.row_factory = sqlite3.Row
    qos = dict(conn.execute("SELECT * FROM channel_qos").fetchone())
    assert qos == {"channel": "bank", "requests": 6, "answered": 3, "ok": 2, "timeouts": 1,
                   "refused": 1, "success_rate": 0.4, "avg_latency_ms": 150,
                   "max_latency_ms": 300}


# -- the gateway: an app's own key --------------------------------------------------------------

APPS = (App("A1", "app-key-1", "HMAC-SHA256", 30), App("A2", "app-key-2", "MD5", 90,
                                                       status="disabled"))
M = Merchant("M001", "merchant-key", "MD5", 60, apps=APPS)


def _gateway_db():
    db = sqlite_utils.Database(memory=True)
    replay.create_tables(db)
    idempotency.create_tables(db)
    return Gateway({"M001": M}, ReplayGuard(300_000)), db


def _pay(secret: str, sign_type: str, nonce: str, **fields) -> dict:
    body = {"type": "pay.create", "merchant_id": "M001", "timestamp": NOW, "nonce": nonce,
            "merchant_order_no": f"MO-{nonce}", "order_time": NOW - 1000, "user_id": "U1",
            "product": "platform", "amount": 100, "currency": "CNY",
            "notify_url": "http://m/notify", **fields}
    return signed(body, secret, sign_type)


def _refused(gateway, db, body) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        gateway.admit(db.conn, body, NOW)
    return info.value


def test_the_gateway_verifies_with_the_apps_key_when_an_app_is_named():
    gateway, db = _gateway_db()
    assert gateway.admit(db.conn, _pay("app-key-1", "HMAC-SHA256", "n1", app_id="A1"), NOW) is None
    assert gateway.admit(db.conn, _pay("merchant-key", "MD5", "n2"), NOW) is None
    err = _refused(gateway, db, _pay("merchant-key", "HMAC-SHA256", "n3", app_id="A1"))
    assert (err.code, err.field) == ("BAD_SIGNATURE", "sign")
    assert "app A1's signature" in str(err)
    err = _refused(gateway, db, _pay("merchant-key", "MD5", "n4", app_id="A1"))
    assert (err.code, err.field) == ("BAD_SIGNATURE", "sign_type")
    err = _refused(gateway, db, _pay("merchant-key", "MD5", "n5", app_id="A9"))
    assert (err.code, err.field) == ("INVALID_PARAM", "app_id") and "A1, A2" in str(err)
    err = _refused(gateway, db, _pay("app-key-2", "MD5", "n6", app_id="A2"))
    assert (err.code, err.field) == ("MERCHANT_DISABLED", "app_id")


def test_app_fee_rates_and_their_checks():
    assert M.fee_rate("A1") == 30 and M.fee_rate("A2") == 90 and M.fee_rate(None) == 60
    assert M.fee_rate("nope") == 60
    assert M.fee_rule("A2").fee(10_000) == 90 and M.fee_rule("").fee(10_000) == 60
    with pytest.raises(ValueError, match="app A1: fee_rate_bp"):
        App("A1", "k", "MD5", 10_001)
    with pytest.raises(ValueError, match="distinct app ids"):
        Merchant("M1", "s", "MD5", 60, apps=(App("A1", "k", "MD5", 1), App("A1", "j", "MD5", 2)))
