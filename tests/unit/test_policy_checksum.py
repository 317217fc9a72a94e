"""A policy's checksum covers what it means, not the schema's defaults: a field added later with a default that
keeps today's meaning changes no policy's checksum. Documents signed while checksums covered every default (the
fixture was made with that code) still verify, and only unchanged."""

import base64
import json
from pathlib import Path

from cio_kernel.policy.document import PolicyDocument, legacy_checksum, policy_checksum
from cio_kernel.policy.signing import PolicyVerifier
from tests.factories import make_spec

SIGNED_BEFORE = json.loads((Path(__file__).parent / "data" / "policy-signed-with-full-checksum.json").read_text())
TRUST = PolicyVerifier([base64.b64decode(SIGNED_BEFORE["public_key"])])


def test_the_checksum_leaves_defaults_out():
    assert policy_checksum(make_spec()) == policy_checksum(make_spec(only_listed_strategies=False))
    assert policy_checksum(make_spec(strategies={"a": {}})) == policy_checksum(
        make_spec(strategies={"a": {"own_identity": False}})
    )
    assert policy_checksum(make_spec()) != policy_checksum(make_spec(only_listed_strategies=True))


def test_a_document_signed_with_every_default_in_its_checksum_still_verifies():
    document = PolicyDocument.model_validate_json(json.dumps(SIGNED_BEFORE["document"]))
    assert document.checksum != policy_checksum(document.spec)  # the old scheme ...
    assert document.checksum == legacy_checksum(document.spec)  # ... which is still recognised
    assert document.checksum_matches() and document.verified_by(TRUST)


def test_an_old_document_with_a_newer_field_set_is_not_accepted_under_the_old_scheme():
    raw = json.loads(json.dumps(SIGNED_BEFORE["document"]))
    raw["spec"]["strategies"]["llm_swing"]["own_identity"] = True  # a field the old scheme never saw
    tampered = PolicyDocument.model_validate_json(json.dumps(raw))
    assert legacy_checksum(tampered.spec) is None
    assert not tampered.checksum_matches() and not tampered.verified_by(TRUST)
    raw["spec"]["strategies"]["llm_swing"]["own_identity"] = False  # at its default it means nothing new
    assert PolicyDocument.model_validate_json(json.dumps(raw)).verified_by(TRUST)
