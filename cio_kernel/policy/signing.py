"""Policy documents are signed by the control plane and verified by every gate (Ed25519).

The checksum only proves the spec matches the document; anyone who can write Redis could build a matching
document. The signature proves the control plane made it: the private key lives only with the control plane
(`CIO_POLICY_SIGNING_KEY_FILE`), gates hold public keys (`CIO_POLICY_PUBLIC_KEY` or a key file), and a public
key cannot sign. What is signed: the version, the checksum (which covers the spec), the activation time and the
activating officer, so none of them can be changed or replayed under another version (the bytes:
`cio_kernel.policy.document`, which needs no cryptography to be read).

Keys are stored as base64 of the raw 32 bytes, one per file; the key id is the first 16 hex digits of the
public key's SHA-256 (so several public keys can be trusted during a rotation).
"""

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PRIVATE_KEY_FILE = "policy-signing.key"
PUBLIC_KEY_FILE = "policy-signing.pub"


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class PolicySigner:
    private_key: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return _raw_public(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()

    @classmethod
    def generate(cls) -> "PolicySigner":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> "PolicySigner":
        raw = base64.b64decode(path.read_text().strip(), validate=True)
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load_or_create(
        cls, folder: Path, private_file: str = PRIVATE_KEY_FILE, public_file: str = PUBLIC_KEY_FILE
    ) -> "PolicySigner":
        """The local stack's key pair: created on first use (private key 0600), kept in `folder`. Other key pairs
        of the same kind (the gates' audit checkpoint key) pass their own file names."""
        private = folder / private_file
        if private.exists():
            return cls.load(private)
        signer = cls.generate()
        folder.mkdir(parents=True, exist_ok=True)
        raw = signer.private_key.private_bytes_raw()
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(raw).decode() + "\n")
        (folder / public_file).write_text(base64.b64encode(signer.public_raw).decode() + "\n")
        return signer


class PolicyVerifier:
    """The public keys a gate trusts, by key id."""

    def __init__(self, public_keys: list[bytes]) -> None:
        self._keys = {key_id(raw): Ed25519PublicKey.from_public_bytes(raw) for raw in public_keys}

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, message: bytes, signature: str | None, signed_by: str | None) -> bool:
        if not signature or signed_by is None:
            return False
        key = self._keys.get(signed_by)
        if key is None:
            return False
        try:
            key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    @classmethod
    def from_config(cls, encoded: str, key_file: Path | None) -> "PolicyVerifier | None":
        """Keys from `CIO_POLICY_PUBLIC_KEY` (base64, comma-separated), else from the key file; None if neither."""
        values = [v.strip() for v in encoded.split(",") if v.strip()]
        if not values and key_file is not None and key_file.exists():
            values = [key_file.read_text().strip()]
        if not values:
            return None
        return cls([base64.b64decode(v, validate=True) for v in values])
