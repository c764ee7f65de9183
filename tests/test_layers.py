"""Imports point one way: programs → workers → activities → workflows → notiflow (issue 16 §5, DESIGN §1).

Checked on the import graph (grimp), transitively: a shared module that imports a workflow through
some other module fails as surely as one that imports it directly.
"""

from __future__ import annotations

import grimp
import pytest

LAYERS = ["programs", "workers", "activities", "workflows", "notiflow"]
#: What only activities/, notiflow/ and the programs may touch (DESIGN §1): I/O libraries.
IO_LIBRARIES = ["sqlalchemy", "asyncpg", "jinja2", "aiosmtplib", "httpx"]
WORKFLOW_FEATURES = ["delivery", "digest", "directory", "sla", "spike", "summary", "engagement"]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *LAYERS, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )


@pytest.mark.parametrize(
    "lower,higher",
    [(LAYERS[j], LAYERS[i]) for i in range(len(LAYERS)) for j in range(i + 1, len(LAYERS))],
)
def test_a_lower_layer_never_imports_a_higher_one(graph: grimp.ImportGraph, lower: str, higher: str):
    chain = graph.find_shortest_chain(importer=lower, imported=higher, as_packages=True)
    assert chain is None, f"{lower} imports {higher}: {' → '.join(chain or ())}"


@pytest.mark.parametrize("library", IO_LIBRARIES)
def test_workflow_code_imports_no_io_library(graph: grimp.ImportGraph, library: str):
    chain = graph.find_shortest_chain(importer="workflows", imported=library, as_packages=True)
    assert chain is None, f"workflow code reaches {library}: {' → '.join(chain or ())}"


def test_workflow_features_import_each_other_one_way(graph: grimp.ImportGraph):
    both_ways = [
        (a, b)
        for i, a in enumerate(WORKFLOW_FEATURES)
        for b in WORKFLOW_FEATURES[i + 1 :]
        if graph.chain_exists(f"workflows.{a}", f"workflows.{b}", as_packages=True)
        and graph.chain_exists(f"workflows.{b}", f"workflows.{a}", as_packages=True)
    ]
    assert not both_ways, f"features importing each other: {both_ways}"
