"""docs/workload.md names every variable and metric the contract defines, so neither drifts."""

from pathlib import Path

import pytest
from scalingdemo_workload.contract import SEED_METRIC_QUERIES, Env, Metric

pytestmark = pytest.mark.unit

DOC = (Path(__file__).resolve().parents[2] / "docs" / "workload.md").read_text()


def names(holder: type) -> list[str]:
    return [value for key, value in vars(holder).items() if key.isupper()]


@pytest.mark.parametrize("name", names(Env) + names(Metric))
def test_documented(name):
    assert f"`{name}" in DOC


@pytest.mark.parametrize(("seed", "query"), SEED_METRIC_QUERIES.items())
def test_seed_mapping_documented(seed, query):
    assert f"`{seed}" in DOC
    assert f"`{query}`" in DOC
