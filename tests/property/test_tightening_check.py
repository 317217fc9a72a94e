"""The tightening check (`cio_kernel.policy.tightening`) against the decision function: whatever it calls a
tightening never approves an intent the old policy refused, and every tightening the generator builds is
recognised as one."""

from hypothesis import given
from hypothesis import strategies as st

from cio_kernel.policy.tightening import loosenings, only_tightens
from gate.decision.evaluate import evaluate
from tests.factories import NOW, compile_spec
from tests.property.strategies import (
    PROPERTY_SETTINGS,
    intents,
    policy_dicts,
    snapshots,
    spec_of,
    state_after,
    tightened,
)


@PROPERTY_SETTINGS
@given(data=st.data(), policy=policy_dicts())
def test_every_tightening_is_recognised(data, policy):
    stricter = data.draw(tightened(policy))
    assert not loosenings(spec_of(policy), spec_of(stricter))


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    policy=policy_dicts(),
    intent=intents(),
    snapshot=snapshots(),
    history=st.lists(intents(), max_size=3),
)
def test_what_the_check_calls_a_tightening_never_approves_what_the_old_policy_refused(
    data, policy, intent, snapshot, history
):
    # Half the candidates are built as tightenings, half at random (mostly looser somewhere): the check must
    # tell them apart, and whatever it lets through must be sound.
    candidate = data.draw(st.one_of(tightened(policy), policy_dicts()))
    old, new = spec_of(policy), spec_of(candidate)
    if not only_tightens(old, new):
        return
    state = state_after(snapshot, history)
    if evaluate(intent, compile_spec(new), state, NOW).promote:
        assert evaluate(intent, compile_spec(old), state, NOW).promote
