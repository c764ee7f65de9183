"""AES-256-GCM payload codec over a keyring: Temporal stores payloads (names, addresses, bodies) encrypted.

Each payload is serialized whole (metadata included, so the original encoding
survives) and sealed with a fresh 12-byte nonce under the ring's first key; the
id of that key is written beside it (``encryption-key-id``), so a payload names
the key that opens it without revealing it. Every key of the ring decrypts:
rotating is adding a new first key and keeping the old ones until no history
needs them (README, Running in production). A payload whose key id is not in the
ring, or that its key does not open, fails loudly naming the key id. Payloads
without our encoding pass ``decode`` untouched: histories recorded before
encryption was switched on still read.

The ring comes from ``NOTIFLOW_PAYLOAD_KEYS`` (``kid:base64key,…``); a single
``NOTIFLOW_CODEC_KEY`` is a one-key ring whose id is its hash prefix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from notiflow.settings import Settings, codec_key_id

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
#: Where the keys come from, for error messages.
KEY_SETTINGS = "NOTIFLOW_PAYLOAD_KEYS (or NOTIFLOW_CODEC_KEY)"


class CodecError(ValueError):
    """A payload this codec cannot open; the message names the key id it needs."""


def key_id(key: bytes) -> str:
    """The id of a key given without one (NOTIFLOW_CODEC_KEY)."""
    return codec_key_id(key)


class EncryptionCodec(PayloadCodec):
    """Seals with the first key of the ring, opens with whichever key a payload names.

    ``keys``: one 32-byte key (its id is its hash prefix) or (key id, key) pairs, the encrypting one first.
    """

    def __init__(self, keys: bytes | Iterable[tuple[str, bytes]]) -> None:
        ring = [(key_id(keys), keys)] if isinstance(keys, bytes) else list(keys)
        if not ring:
            raise ValueError("a keyring needs at least one key")
        self._ring = {kid: AESGCM(key) for kid, key in ring}
        if len(self._ring) != len(ring):
            raise ValueError("a key id appears twice in the keyring")
        #: The id of the key that encrypts.
        self.key_id = ring[0][0]
        self._sealer = self._ring[self.key_id]

    @property
    def key_ids(self) -> list[str]:
        """Every key id of the ring, the encrypting one first."""
        return list(self._ring)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            self._open(payload) if payload.metadata.get("encoding") == ENCODING else payload for payload in payloads
        ]

    def _seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._sealer.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=nonce + sealed)

    def _open(self, payload: Payload) -> Payload:
        sealed_with = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        aead = self._ring.get(sealed_with)
        if aead is None:
            raise CodecError(
                f"payload was encrypted with key {sealed_with or '(no key id)'}, which is not in the keyring "
                f"(keys {', '.join(self._ring)}); add key {sealed_with or '(no key id)'} to {KEY_SETTINGS}"
            )
        try:
            plain = aead.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise CodecError(
                f"payload under key {sealed_with} failed authentication: it was altered, or the key given as "
                f"{sealed_with} in {KEY_SETTINGS} is not the one that sealed it"
            ) from None
        return Payload.FromString(plain)


def codec_for(settings: Settings) -> EncryptionCodec | None:
    """The codec for the keyring (NOTIFLOW_PAYLOAD_KEYS, NOTIFLOW_CODEC_KEY), or None when payloads stay plaintext."""
    ring = settings.payload_keyring
    return EncryptionCodec(ring) if ring else None
