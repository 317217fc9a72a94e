"""Writing `policy:active` (docs/policy.md): versions only go up, enforced atomically inside Redis.

The gate only reads this key; the control plane (and the local dev stack's seeding) write it through here,
so the never-replace-a-newer-version rule lives in one place. The one exception is a document the caller read,
found untrustworthy (unsigned, badly signed, unreadable) and passes back as `replacing`: it is overwritten only
if it is still exactly what Redis holds, whatever version it claims (a forged v10^15 cannot lock the control
plane out).
"""

from datetime import UTC, datetime

import redis.asyncio as aioredis

from cio_kernel.policy.document import ACTIVE_POLICY_KEY, PolicyDocument, policy_checksum
from cio_kernel.policy.signing import PolicySigner
from cio_kernel.policy.spec import PolicySpec

# KEYS[1] = policy:active, ARGV[1] = new version, ARGV[2] = document JSON, ARGV[3] = the untrusted document to
# replace ('' for none). Returns 1 when written, 0 when Redis already holds this or a newer version.
_CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current and ARGV[3] ~= '' and current == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' and tonumber(doc['version']) and tonumber(doc['version']) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


def build_document(
    spec: PolicySpec,
    version: int,
    activated_by: str,
    at: datetime | None = None,
    signer: PolicySigner | None = None,
) -> PolicyDocument:
    """The document for `policy:active`; gates refuse it unless `signer` is the control plane's key."""
    document = PolicyDocument(
        version=version,
        checksum=policy_checksum(spec),
        activated_at=at or datetime.now(UTC),
        activated_by=activated_by,
        spec=spec,
    )
    return document.signed_with(signer) if signer is not None else document


async def write_active_policy(redis: aioredis.Redis, document: PolicyDocument, replacing: bytes | None = None) -> bool:
    """Store `document` as `policy:active` unless Redis holds the same or a newer version (or, with
    `replacing`, unless Redis no longer holds exactly that untrusted document)."""
    compact = document.model_dump_json(exclude_defaults=True)  # unset limits are not written (policies get large)
    written = await redis.eval(_CAS_SCRIPT, 1, ACTIVE_POLICY_KEY, document.version, compact, replacing or b"")
    return bool(written)


async def read_active_raw(redis: aioredis.Redis) -> bytes | None:
    raw = await redis.get(ACTIVE_POLICY_KEY)
    return bytes(raw) if raw is not None else None


async def read_active_policy(redis: aioredis.Redis) -> PolicyDocument | None:
    raw = await read_active_raw(redis)
    return PolicyDocument.model_validate_json(raw) if raw is not None else None
