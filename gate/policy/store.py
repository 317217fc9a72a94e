"""Writing `policy:active` (SPEC §6): versions only go up, enforced atomically inside Redis.

The gate only reads this key; the control plane (and the local dev stack's seeding) write it through here,
so the never-replace-a-newer-version rule lives in one place.
"""

from datetime import UTC, datetime

import redis.asyncio as aioredis

from gate.policy.document import ACTIVE_POLICY_KEY, PolicyDocument, policy_checksum
from gate.policy.spec import PolicySpec

# KEYS[1] = policy:active, ARGV[1] = new version, ARGV[2] = document JSON.
# Returns 1 when written, 0 when Redis already holds this or a newer version.
_CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' and tonumber(doc['version']) and tonumber(doc['version']) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


def build_document(spec: PolicySpec, version: int, activated_by: str, at: datetime | None = None) -> PolicyDocument:
    return PolicyDocument(
        version=version,
        checksum=policy_checksum(spec),
        activated_at=at or datetime.now(UTC),
        activated_by=activated_by,
        spec=spec,
    )


async def write_active_policy(redis: aioredis.Redis, document: PolicyDocument) -> bool:
    """Store `document` as `policy:active` unless Redis holds the same or a newer version."""
    written = await redis.eval(_CAS_SCRIPT, 1, ACTIVE_POLICY_KEY, document.version, document.model_dump_json())
    return bool(written)


async def read_active_policy(redis: aioredis.Redis) -> PolicyDocument | None:
    raw = await redis.get(ACTIVE_POLICY_KEY)
    return PolicyDocument.model_validate_json(raw) if raw is not None else None
