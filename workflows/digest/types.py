"""Inputs and outputs of DigestWorkflow and its activities — declarations only (when a digest goes out is
``rules.py``).

Passed through the sandbox (``workers/main.py : DECLARATIONS``): pydantic models, no functions, nothing
that reads a clock — tests/test_sandbox.py checks it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from notiflow.contracts import Frequency
from notiflow.runs import DeliveryOutcome
from workflows.delivery.types import DeliveryPlan


class DigestItem(BaseModel):
    queue_id: str
    frequency: Frequency
    #: When the digest that carries it goes out (recipient's zone, past their quiet hours).
    flush_at: datetime


class DigestAdditions(BaseModel):
    items: list[DigestItem]


class DigestInput(BaseModel):
    user_id: str
    #: Items carried over continue-as-new (not yet due at the last flush).
    pending: list[DigestItem] = Field(default_factory=list)


class DigestFlush(BaseModel):
    user_id: str
    #: Unique per user and flush; names the digest rows (dedupe) and the items' provider_response.
    digest_id: str
    period: Frequency
    queue_ids: list[str]


class DigestComposition(BaseModel):
    """The digest rows composed for one flush (one per channel) and what is left to deliver of them."""

    digest_ids: list[str]
    plan: DeliveryPlan


class DigestSettle(BaseModel):
    digest_ids: list[str]


class DigestResult(BaseModel):
    items: int
    outcome: DeliveryOutcome
