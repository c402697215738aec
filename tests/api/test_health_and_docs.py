"""What answers without a key: `/health`, which says nothing but that podium and its database answer, and the
API's documentation, served whole from the installed packages (a page that fetched Swagger from a CDN was blank
offline)."""

from __future__ import annotations

import re
import shutil

import podium
from podium import Podium, Settings
from tests.api.conftest import Api, served


def test_health_answers_without_a_key_and_tells_nothing_more(sqlite_api: Api) -> None:
    api = sqlite_api
    health = api.client.get("/health")
    assert (health.status_code, health.json()) == (
        200,
        {"status": "ok", "database": "reachable", "version": podium.__version__},
    )
    assert api.client.get("/health", headers={"Host": "evil.example"}).status_code == 421


def test_health_is_503_in_the_error_shape_when_the_database_does_not_answer(sqlite_settings: Settings) -> None:
    home = sqlite_settings.home
    with Podium.connect(sqlite_settings) as pod, served(pod) as api:
        shutil.move(home, home.with_name("moved"))
        pod.engine.dispose()  # no connection kept open on the moved file
        try:
            down = api.client.get("/health")
        finally:
            shutil.move(home.with_name("moved"), home)
        assert (down.status_code, down.json()["error"]["code"]) == (503, "unavailable")
        assert str(home) not in down.text and "sqlite" not in down.text.lower(), "no path, no driver"
        assert api.client.get("/health").status_code == 200, "back"


def test_the_docs_are_served_from_the_installed_package_with_nothing_from_another_host(sqlite_api: Api) -> None:
    client = sqlite_api.client
    for page_url in ("/docs", "/redoc"):
        page = client.get(page_url)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "http://" not in page.text and "https://" not in page.text, f"{page_url} reaches for another host"
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert len(assets) >= 2, page.text
        for asset in assets:
            assert asset.startswith("/"), asset
            fetched = client.get(asset)
            assert fetched.status_code == 200 and len(fetched.content) > 1000, asset
    swagger = client.get("/docs").text
    assert '"validatorUrl": null' in swagger, "Swagger UI would send the document's URL to its online validator"
    assert "'/openapi.json'" in swagger and client.get("/openapi.json").json()["info"]["title"] == "podium"
