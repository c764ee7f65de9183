"""Every workflow the worker runs: each feature's ``WORKFLOWS``, assembled in one place.

Kept out of ``workflows/__init__`` (which stays empty) so that a run, which the
sandbox re-imports, loads only its own feature's module.
"""

from workflows.delivery.workflows import WORKFLOWS as DELIVERY
from workflows.digest.workflows import WORKFLOWS as DIGEST
from workflows.directory.workflows import WORKFLOWS as DIRECTORY
from workflows.sla.workflows import WORKFLOWS as SLA
from workflows.spike.workflows import WORKFLOWS as SPIKE
from workflows.summary.workflows import WORKFLOWS as SUMMARY

ALL_WORKFLOWS = [*DELIVERY, *DIRECTORY, *SLA, *DIGEST, *SUMMARY, *SPIKE]
