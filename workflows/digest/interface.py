"""The activities DigestWorkflow calls: each one's name and types (bodies in ``activities/digest``)."""

from __future__ import annotations

from temporalio import activity

from workflows.digest.types import DigestComposition, DigestFlush, DigestSettle


@activity.defn
async def compose_digest(flush: DigestFlush) -> DigestComposition:
    """One digest row per channel listing the due items, rendered in the person's language."""
    ...


@activity.defn
async def settle_digest(settle: DigestSettle) -> int:
    """Mark each delivered digest's items SENT (or FAILED with the digest's error)."""
    ...
