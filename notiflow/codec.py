"""AES-256-GCM payload codec: Temporal stores event payloads (names, emails) encrypted.

Each payload is serialized whole (metadata included, so the original encoding
survives) and sealed with a fresh 12-byte nonce. The key id written beside it
is a hash prefix, so history shows which key sealed a payload without leaking
the key. Payloads without our encoding pass ``decode`` untouched: histories
recorded before encryption was switched on still read.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from notiflow.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload this codec cannot open; the message says which key to use."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class EncryptionCodec(PayloadCodec):
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(payload) if payload.metadata.get("encoding") == ENCODING else payload
                for payload in payloads]

    def _seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=nonce + sealed)

    def _open(self, payload: Payload) -> Payload:
        sealed_with = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        if sealed_with != self.key_id:
            raise CodecError(f"payload was encrypted with key {sealed_with or '(none)'}, but NOTIFLOW_CODEC_KEY "
                             f"is key {self.key_id}; set NOTIFLOW_CODEC_KEY to the key that wrote it")
        try:
            plain = self._aead.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise CodecError(f"payload under key {self.key_id} failed authentication: it was altered") from None
        return Payload.FromString(plain)


def codec_for(settings: Settings) -> EncryptionCodec | None:
    """The codec for NOTIFLOW_CODEC_KEY, or None when payloads stay plaintext."""
    if settings.codec_key is None:
        return None
    return EncryptionCodec(base64.b64decode(settings.codec_key.get_secret_value()))
