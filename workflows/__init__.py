"""Temporal workflows only: deterministic, no I/O.

Deliberately empty: the sandbox re-imports a workflow's module and its package
for every run, so the registry of all workflows lives in ``workers.registry``.
"""
