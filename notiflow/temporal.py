"""Temporal client factory, the data converter and notiflow's search attributes.

Workflows import the search-attribute keys from here, so this module stays
free of I/O at import time.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime

from notiflow.settings import Settings

ISSUE_ID = SearchAttributeKey.for_keyword("IssueId")
NOTIFICATION_TYPE = SearchAttributeKey.for_keyword("NotificationType")
ISSUE_PRIORITY = SearchAttributeKey.for_keyword("IssuePriority")
#: SENT / PARTIAL / FAILED, set when a notifying run ends: `DeliveryOutcome="FAILED"` finds every run that lost one.
DELIVERY_OUTCOME = SearchAttributeKey.for_keyword("DeliveryOutcome")

#: Registered on the dev server (`--search-attribute`) and in tests. No personal data.
SEARCH_ATTRIBUTES = (ISSUE_ID, NOTIFICATION_TYPE, ISSUE_PRIORITY, DELIVERY_OUTCOME)

#: Plaintext; tests and replay use it as is.
DATA_CONVERTER = pydantic_data_converter


def data_converter(settings: Settings) -> DataConverter:
    """DATA_CONVERTER, encrypting payloads when a keyring is set (NOTIFLOW_PAYLOAD_KEYS or NOTIFLOW_CODEC_KEY).

    Failure messages move into the encrypted attributes too: an SMTP refusal quotes the address.
    """
    from notiflow.codec import codec_for  # here, not at the top: workflows import this module in the sandbox

    codec = codec_for(settings)
    if codec is None:
        return DATA_CONVERTER
    return dataclasses.replace(
        DATA_CONVERTER, payload_codec=codec, failure_converter_class=DefaultFailureConverterWithEncodedAttributes
    )


def search_attributes(
    *, issue_id: str | None = None, notification_type: str | None = None, priority: str | None = None
) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(key, value)
        for key, value in ((ISSUE_ID, issue_id), (NOTIFICATION_TYPE, notification_type), (ISSUE_PRIORITY, priority))
        if value
    ]
    return TypedSearchAttributes(pairs)


def dev_server_search_attribute_args() -> list[str]:
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving the SDK's Prometheus metrics at ``bind_address``.

    That is how a workflow task that keeps failing (a run whose code or input the
    worker cannot handle) is surfaced: ``temporal_workflow_task_execution_failed``
    rises, and the worker logs the run id with each failure.
    """
    from temporalio.runtime import PrometheusConfig, TelemetryConfig

    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


async def connect_client(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
    )
