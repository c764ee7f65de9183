"""/docs works without internet: Swagger UI 5 (OpenAPI 3.1) is served by the API itself."""

from __future__ import annotations


async def test_docs_page_and_its_assets_come_from_this_server(api):
    page = await api.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text  # nothing fetched from the internet
    script = await api.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert (await api.get("/docs-assets/swagger-ui.css")).status_code == 200
    schema = (await api.get("/openapi.json")).json()
    assert schema["openapi"].startswith("3.1") and "bearer" in str(schema["components"]["securitySchemes"]).lower()
