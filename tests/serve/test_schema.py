"""Schemathesis against the served OpenAPI schema: no generated request, valid or not, gets a 5xx."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlpractice.serve.app import build_app, served_from

schemathesis = pytest.importorskip("schemathesis", reason="the schema test needs schemathesis (dev extra)")


@pytest.mark.slow
def test_no_generated_request_is_a_server_error(l2_run):
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_asgi("/openapi.json", build_app(served_from(l2_run), ui=False))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/health", "/model", "/failures"}
    cases = st.one_of(*(op.as_strategy() for op in operations))

    @given(case=cases)
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def no_5xx(case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    no_5xx()
