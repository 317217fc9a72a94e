"""Each strategy's share of the gate: token buckets on an explicit clock, and who pays for an intent."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.runtime.fair_share import SHARED, FairShare, intent_cost, share_key
from tests.factories import live_intent_body


def test_a_strategy_spends_its_burst_then_its_rate_and_others_keep_theirs():
    share = FairShare(rate_per_s=10.0, burst=5.0)
    assert [share.admit("flood", 1.0, 0.0) for _ in range(8)] == [True] * 5 + [False] * 3
    assert share.admit("quiet", 1.0, 0.0)  # another strategy's bucket is untouched
    assert not share.admit("flood", 1.0, 0.05)  # half a token refilled: not enough
    assert share.admit("flood", 1.0, 0.1)
    assert [share.admit("flood", 1.0, 100.0) for _ in range(6)] == [True] * 5 + [False]  # never above the burst


def test_a_refused_intent_is_not_charged():
    share = FairShare(rate_per_s=1.0, burst=10.0)
    assert not share.admit("s", 11.0, 0.0)
    assert share.admit("s", 10.0, 0.0)


def test_a_flood_of_new_keys_cannot_grow_the_table():
    share = FairShare(rate_per_s=1.0, burst=2.0, max_buckets=3, open_share=100.0)
    for i in range(3):
        assert share.admit(f"k{i}", 2.0, 0.0)
    assert share.admit("k3", 1.0, 0.0) and share.admit("k4", 1.0, 0.0)  # both land in the shared bucket
    assert not share.admit("k5", 1.0, 0.0)
    assert share.admit("k7", 2.0, 10.0)  # once the others refilled they are forgotten, and keys get their own


def test_cost_grows_with_size():
    assert intent_cost(400) == 1.0 and intent_cost(511) == 1.0 and intent_cost(512) == 2.0
    assert intent_cost(64 * 1024) == 129.0


def test_the_subject_names_the_payer_when_it_names_a_strategy():
    body = orjson.dumps(live_intent_body(strategy_id="someone else"))
    # Only the exact subject is the strategy's own: any other spelling of its key is a claim anyone may make.
    assert share_key("cio.intent.trading.Momentum-Pulse", body) == "claimed:momentum_pulse"
    assert share_key("cio.intent.trading.momentum_pulse", b"") == "momentum_pulse"


def test_a_claim_on_a_shared_subject_has_a_bucket_of_its_own_kind():
    body = orjson.dumps(live_intent_body(strategy_id="Momentum Pulse"))
    assert share_key("intent.trading.BTCUSDT", body) == "claimed:momentum_pulse"
    assert share_key("cio.nurse.audit", body) == "claimed:momentum_pulse"
    spaced = b'{"strategy_id" :  "ta-bot", "symbol": "BTCUSDT"}'
    assert share_key("cio.nurse.audit", spaced) == "claimed:ta_bot"


def test_what_names_no_strategy_cheaply_shares_one_bucket():
    assert share_key("cio.nurse.audit", b'{"symbol": "BTCUSDT"}') == SHARED
    assert share_key("cio.nurse.audit", b'{"strategy_id": "caf\\u00e9"}') == SHARED
    assert share_key("cio.nurse.audit", b'{"strategy_id": "..."}') == SHARED
    assert share_key("cio.intent.trading.a.b", b"{}") == SHARED
    assert share_key("cio.intent.trading.!", b"{}") == SHARED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0.5, 4.0), st.floats(0.0, 0.5)), max_size=60))
def test_no_key_is_ever_admitted_more_than_its_burst_plus_its_rate(calls):
    share = FairShare(rate_per_s=3.0, burst=5.0)
    now, spent = 0.0, {"a": 0.0, "b": 0.0, "c": 0.0}
    for key, cost, step in calls:
        now += step
        if share.admit(key, cost, now):
            spent[key] += cost
    assert all(total <= 5.0 + 3.0 * now + 1e-9 for total in spent.values())


def test_a_new_claimed_id_per_intent_buys_no_more_than_the_open_share():
    share = FairShare(rate_per_s=10.0, burst=5.0, open_share=2.0)
    # Every intent under a new id (claimed, or a subject token no strategy owns): each id's bucket is fresh.
    admitted = [share.admit(f"claimed:rot_{i}", 1.0, 0.0) for i in range(50)]
    assert admitted == [True] * 10 + [False] * 40  # the open bucket: twice one strategy's burst, then nothing
    assert not share.admit(SHARED, 1.0, 0.0) and not share.admit("minted_token", 1.0, 0.0)
    assert share.admit("claimed:rot_x", 1.0, 0.05)  # it refills at twice one strategy's rate
    assert share.admit("momentum_pulse", 1.0, 0.05, protected=True)  # an own identity never paid from it


def test_a_flood_of_minted_keys_cannot_push_an_own_identity_out_of_its_share():
    # The table full of minted keys that spent nothing but their first unit, the open bucket drained: a
    # strategy on its own subject arriving only now still gets its whole burst (it used to land in the one
    # bucket every newcomer shares, which the flood kept empty).
    share = FairShare(rate_per_s=1.0, burst=3.0, max_buckets=4, open_share=100.0)
    for i in range(400):
        share.admit(f"claimed:rot_{i}", 1.0, 0.0)
    assert not share.admit("claimed:late", 1.0, 0.0)
    assert [share.admit("momentum_pulse", 1.0, 0.0, protected=True) for _ in range(4)] == [True] * 3 + [False]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.booleans(), st.floats(0.5, 4.0), st.floats(0.0, 0.5)), max_size=80)
)
def test_minted_keys_together_never_spend_more_than_the_open_share(calls):
    share = FairShare(rate_per_s=3.0, burst=5.0, max_buckets=8, open_share=1.5)
    now, minted, own = 0.0, 0.0, 0.0
    for key, is_own, cost, step in calls:
        now += step
        if share.admit("momentum_pulse" if is_own else f"claimed:k{key}", cost, now, protected=is_own):
            if is_own:
                own += cost
            else:
                minted += cost
    assert minted <= 1.5 * (5.0 + 3.0 * now) + 1e-9
    assert own <= 5.0 + 3.0 * now + 1e-9
