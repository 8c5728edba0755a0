"""The API's skeleton on a real port: health, OpenAPI, problem+json errors."""

import httpx


async def test_healthz(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}}


async def test_openapi_is_served(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        response = await http.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/healthz" in document["paths"]


async def test_an_unknown_path_is_a_problem_not_a_page(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        response = await http.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert {"type", "title", "status", "detail"} <= body.keys()
