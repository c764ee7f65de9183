"""Temporal client factory and the data converter (the search attributes are in ``notiflow.search``)."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime

from notiflow.settings import Settings

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
