"""A bounded load test over loopback: a real uvicorn server, concurrent clients, no errors, batches > 1."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dlpractice.serve.app import build_app, served_from


@pytest.mark.slow
def test_concurrent_clients_over_loopback_get_answers_in_shared_batches(n6_run, on_loopback):
    app = build_app(served_from(n6_run), ui=False, max_batch=16, max_wait_ms=10)
    with on_loopback(app) as url:
        codes = asyncio.run(hammer(url, requests=96, clients=16))
    assert codes == [200] * 96
    assert app.state.batcher.stats.items == 96 and app.state.batcher.stats.mean_batch > 1.5


async def hammer(url: str, requests: int, clients: int) -> list[int]:
    """`clients` concurrent callers, each sending its share of `requests` one after another."""
    sentences = ["a gripping film", "not funny at all", "i did not hate it", "long and dull"]

    async def client(index: int, http: httpx.AsyncClient) -> list[int]:
        codes = []
        for j in range(requests // clients):
            body = {"text": sentences[(index + j) % len(sentences)]}
            codes.append((await http.post(f"{url}/predict", json=body, timeout=30)).status_code)
        return codes

    async with httpx.AsyncClient(trust_env=False) as http:
        per_client = await asyncio.gather(*(client(i, http) for i in range(clients)))
    return [code for codes in per_client for code in codes]
