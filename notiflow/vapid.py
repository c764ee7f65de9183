"""VAPID keys (RFC 8292): the P-256 pair a server signs its Web Push requests with.

The private key is kept as base64url of its raw 32-byte scalar (what ``notiflow vapid-keys`` prints and what
``NOTIFLOW_VAPID_PRIVATE_KEY`` holds; a PEM is read too); the public key is given to browsers as base64url
of the uncompressed point (65 bytes), the ``applicationServerKey`` of ``pushManager.subscribe``.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """The key from base64url of its raw scalar, or from a PEM; ValueError when it is neither."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the VAPID key must be a P-256 (prime256v1) EC key")
        return key
    try:
        raw = b64url_decode(text)
    except (ValueError, TypeError):
        raise ValueError("the VAPID private key is neither base64url nor PEM") from None
    if len(raw) != 32:
        raise ValueError(f"the VAPID private key must be 32 bytes (base64url), not {len(raw)}")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The ``applicationServerKey``: base64url of the uncompressed public point."""
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(point)


def private_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def new_pair() -> tuple[str, str]:
    """A new (private, public) pair, both base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    return private_key_b64(key), public_key_b64(key)
