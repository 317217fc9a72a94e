"""What the apps above `policies` plug into it (`policies.extensions`), against the real database and Redis: the
proposal envelope fails closed when no app installed one, and a reconcile pass that fails costs nobody else their
pass."""

import io
from collections.abc import Iterator

import pytest
from django.core.management.base import OutputWrapper

from core import errors
from policies import extensions, services
from policies.management.commands.reconcile_policies import Command
from policies.models import PolicyVersion
from tests.factories import make_spec

pytestmark = pytest.mark.django_db(transaction=True)


def _spec() -> dict:
    return make_spec(max_order_notional_usd=5_000).model_dump(mode="json", by_alias=True)


@pytest.fixture
def no_envelope_installed() -> Iterator[None]:
    installed = list(extensions._installed)
    extensions._installed.clear()
    try:
        yield
    finally:
        extensions._installed[:] = installed


def test_the_strategist_app_installs_the_envelope_check_when_it_starts() -> None:
    from strategist import envelope

    assert extensions._installed == [envelope.proposal_breaches]


def test_without_an_envelope_installed_only_risk_officers_may_propose(stack, users, no_envelope_installed):
    with pytest.raises(errors.OutsideEnvelopeError, match="no proposal envelope is installed"):
        services.propose(spec=_spec(), by=users["agent"])
    assert not PolicyVersion.objects.filter(proposed_by=users["agent"]).exists()

    proposed = services.propose(spec=_spec(), by=users["officer1"])  # officers are never bound by the envelope
    assert PolicyVersion.objects.get(pk=proposed.pk).proposed_by == users["officer1"]


class _Broken:
    name = "broken pass"

    def run(self) -> list[str]:
        raise RuntimeError("the engine is away")


class _Counting:
    name = "counting pass"
    runs = 0

    def run(self) -> list[str]:
        type(self).runs += 1
        return [f"run {type(self).runs}"]


def test_a_failing_reconcile_pass_costs_neither_the_other_passes_nor_the_policy_reconcile(stack, users):
    command = Command(stdout=OutputWrapper(io.StringIO()), stderr=OutputWrapper(io.StringIO()))
    command.passes = [_Broken(), _Counting()]

    assert command.step() is False  # Redis answered: nothing to come back for soon
    assert command.step() is False
    assert "counting pass: run 1" in command.stdout.getvalue() and "counting pass: run 2" in command.stdout.getvalue()


def test_every_app_that_owns_a_pass_registered_it() -> None:
    from outages.watch import GateWatchPass
    from strategist.watchdog import WatchPass
    from tradeconfig.services import SettlePass

    assert {WatchPass, SettlePass, GateWatchPass} <= set(extensions.RECONCILE_PASSES)
