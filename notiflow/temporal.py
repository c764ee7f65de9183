"""Temporal client factory, the data converter and notiflow's search attributes.

Workflows import the search-attribute keys from here, so this module stays
free of I/O at import time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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


#: The command that registers SEARCH_ATTRIBUTES (idempotent); the worker names it when one is missing.
SEARCH_ATTRIBUTES_COMMAND = "notiflow search-attributes"


async def search_attribute_problems(client: Client) -> tuple[list[SearchAttributeKey[Any]], list[str]]:
    """(missing keys, keys registered with another type) of SEARCH_ATTRIBUTES in the client's namespace."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    registered = {**response.system_attributes, **response.custom_attributes}
    missing, mistyped = [], []
    for key in SEARCH_ATTRIBUTES:
        if key.name not in registered:
            missing.append(key)
        elif int(registered[key.name]) != int(key.indexed_value_type):
            have = IndexedValueType.Name(registered[key.name]).removeprefix("INDEXED_VALUE_TYPE_").title()
            mistyped.append(f"{key.name} is {have}, not {_type_name(key)}")
    return missing, mistyped


def _type_name(key: SearchAttributeKey[Any]) -> str:
    return key.indexed_value_type.name.title()


async def require_search_attributes(client: Client) -> None:
    """Start-up preflight of `notiflow worker`: a missing attribute would fail every event run at its end, forever.

    Raises RuntimeError with one line naming the command that fixes it.
    """
    missing, mistyped = await search_attribute_problems(client)
    if mistyped:
        raise RuntimeError(
            f"namespace {client.namespace!r}: search attribute {'; '.join(mistyped)}: "
            "remove it (temporal operator search-attribute remove) and run `notiflow search-attributes`"
        )
    if missing:
        names = ", ".join(f"{key.name} ({_type_name(key)})" for key in missing)
        raise RuntimeError(
            f"namespace {client.namespace!r} lacks the search attributes notiflow writes: {names}; "
            f"add them with `{SEARCH_ATTRIBUTES_COMMAND}` (same NOTIFLOW_TEMPORAL_* settings)"
        )


async def ensure_search_attributes(client: Client) -> tuple[list[str], list[str]]:
    """Add the missing SEARCH_ATTRIBUTES to the client's namespace: (added, already there). Idempotent.

    An attribute registered with another type is an error (RuntimeError): Temporal cannot change a type in place.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    missing, mistyped = await search_attribute_problems(client)
    if mistyped:
        raise RuntimeError(f"namespace {client.namespace!r}: search attribute {'; '.join(mistyped)}")
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in missing},
            )
        )
    added = [key.name for key in missing]
    return added, [key.name for key in SEARCH_ATTRIBUTES if key.name not in added]


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


async def search_attributes_command(settings: Settings) -> list[str]:
    """`notiflow search-attributes`: what it added and what was there."""
    client = await connect_client(settings)
    added, present = await ensure_search_attributes(client)
    types = {key.name: _type_name(key) for key in SEARCH_ATTRIBUTES}
    lines = [f"added {name} ({types[name]})" for name in added] + [f"{name} exists" for name in present]
    return [*lines, f"namespace {client.namespace!r} has every search attribute notiflow writes"]
