"""Fault injection with real processes (issue 8 §3): `make faults`, and tests/test_faults.py in `make test`."""
