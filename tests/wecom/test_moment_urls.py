"""Moments (朋友圈) with images given by URL: fetched by the server from a local image server, checked
as JPEG or PNG by their first bytes, uploaded to the fake WeCom as uploads are — in the service, the JSON
API and the form — and refused with the URL and the reason (no image, too large, 404, private address);
a refused URL uploads nothing and creates no moment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.auth.models import Role
from siyu.core.config import get_settings
from siyu.core.db import Database
from siyu.core.errors import ValidationFailed
from siyu.wecom import service as wecom
from tests.factories import api_client
from tests.image_server import JPEG, PNG, ImageServer, serving
from tests.web.conftest import log_in, make_login
from tests.wecom.conftest import Corp
from tests.wecom.fake_wecom import FakeWecom

MOMENT_TASK = "/cgi-bin/externalcontact/add_moment_task"


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageServer]:
    """The image server, and the setting that lets the server fetch from loopback."""
    monkeypatch.setenv("SIYU_FETCH_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    with serving() as server:
        yield server
    get_settings.cache_clear()


def _moment_bodies(fake: FakeWecom) -> list[dict]:
    return [b for p, b in fake.calls if p == MOMENT_TASK]


def test_an_image_by_url_is_fetched_checked_and_uploaded(
    db: Database, corp: Corp, fake: FakeWecom, images: ImageServer
) -> None:
    with db.transaction() as session:
        png_id = wecom.upload_moment_image_from_url(
            session, workspace_id=corp.workspace_id, url=f"{images.url}/shop/tea.png"
        )
        # the content type says octet-stream: the first bytes decide, and the file keeps its name
        jpeg_id = wecom.upload_moment_image_from_url(
            session, workspace_id=corp.workspace_id, url=f"{images.url}/photos/%E8%8C%B6.jpg"
        )
    assert fake.uploads == [png_id, jpeg_id]
    assert PNG in fake.uploaded[png_id] and b'filename="tea.png"' in fake.uploaded[png_id]
    assert JPEG in fake.uploaded[jpeg_id] and b"image/jpeg" in fake.uploaded[jpeg_id]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/page.png", "not a JPEG or PNG image (the server sent 42 bytes of text/html)"),
        ("/big.png", "more than the 10485760"),
        ("/endless.png", "more than the 10485760 bytes allowed"),
        ("/missing.png", "the server answered 404 Not Found"),
    ],
)
def test_a_url_that_is_no_image_is_refused_with_the_url_and_the_reason(
    db: Database, corp: Corp, fake: FakeWecom, images: ImageServer, path: str, reason: str
) -> None:
    url = f"{images.url}{path}"
    with db.transaction() as session, pytest.raises(ValidationFailed) as refused:
        wecom.upload_moment_image_from_url(
            session, workspace_id=corp.workspace_id, url=url, where="image_urls[2]"
        )
    assert refused.value.message.startswith(url) and reason in refused.value.message
    assert refused.value.where == "image_urls[2]"
    assert fake.uploads == []


def test_without_the_setting_a_loopback_url_is_refused_unfetched(
    db: Database, corp: Corp, fake: FakeWecom, images: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIYU_FETCH_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()
    with db.transaction() as session, pytest.raises(ValidationFailed, match="loopback"):
        wecom.upload_moment_image_from_url(
            session, workspace_id=corp.workspace_id, url=f"{images.url}/shop/tea.png"
        )
    assert images.requested == [] and fake.uploads == []


def test_the_api_creates_a_moment_with_images_and_a_link_picture_by_url(
    db: Database, corp: Corp, fake: FakeWecom, images: ImageServer
) -> None:
    client = api_client(db)
    body = {
        "text": "春茶上新",
        "image_urls": [f"{images.url}/shop/tea.png", f"{images.url}/moved"],
        "sender_userids": ["zhangsan"],
        "request_key": "spring-tea-1",
    }
    made = client.post("/api/wecom/moments", json=body, headers=corp.owner.headers)
    assert made.status_code == 201, made.text
    assert made.json()["state"] == "submitted"
    [sent] = _moment_bodies(fake)
    assert [a["image"]["media_id"] for a in sent["attachments"]] == fake.uploads and len(fake.uploads) == 2
    asked = len(images.requested)
    again = client.post("/api/wecom/moments", json=body, headers=corp.owner.headers)
    assert again.json()["id"] == made.json()["id"]
    assert len(images.requested) == asked and len(_moment_bodies(fake)) == 1  # a retry fetches nothing
    link = client.post(
        "/api/wecom/moments",
        json={
            "link": {
                "title": "春茶",
                "url": "https://example.com/tea",
                "image_url": f"{images.url}/shop/tea.png",
            }
        },
        headers=corp.owner.headers,
    )
    assert link.status_code == 201, link.text
    assert _moment_bodies(fake)[-1]["attachments"][0]["link"]["media_id"] == fake.uploads[-1]


def test_the_api_refuses_a_bad_url_and_uploads_nothing(
    db: Database, corp: Corp, fake: FakeWecom, images: ImageServer
) -> None:
    client = api_client(db)
    bad = f"{images.url}/page.png"
    refused = client.post(
        "/api/wecom/moments",
        json={"text": "x", "image_urls": [f"{images.url}/shop/tea.png", bad]},
        headers=corp.owner.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["where"] == "image_urls[1]" and refused.json()["message"].startswith(bad)
    assert fake.uploads == [] and _moment_bodies(fake) == []
    scheme = client.post(
        "/api/wecom/moments", json={"image_urls": ["file:///etc/passwd"]}, headers=corp.owner.headers
    )
    assert scheme.status_code == 422 and "is not fetched" in scheme.json()["message"]


def test_the_form_takes_image_urls(
    client: TestClient, db: Database, corp: Corp, fake: FakeWecom, images: ImageServer
) -> None:
    token = log_in(client, make_login(db, corp.workspace_id, Role.OWNER))
    page = client.get("/moments", headers={"Accept-Language": "en"}).text
    assert 'name="image_urls"' in page and "Or image URLs" in page
    made = client.post(
        "/moments",
        data={
            "csrf_token": token,
            "text": "冬季新品",
            "image_urls": f"{images.url}/shop/tea.png\n\n  {images.url}/photos/%E8%8C%B6.jpg  \n",
        },
        files=[("images", ("p.png", PNG, "image/png"))],
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    [sent] = _moment_bodies(fake)
    assert len(sent["attachments"]) == 3 and len(fake.uploads) == 3
    missing = f"{images.url}/missing.png"
    refused = client.post(
        "/moments",
        data={"csrf_token": token, "text": "x", "image_urls": missing},
        files=[("images", ("p.png", PNG, "image/png"))],
    )
    assert refused.status_code == 422 and missing in refused.text and "404 Not Found" in refused.text
    assert len(fake.uploads) == 3  # the uploaded file was not sent either: the URL failed first
    too_many = client.post(
        "/moments",
        data={"csrf_token": token, "text": "x", "image_urls": "\n".join([f"{images.url}/shop/tea.png"] * 9)},
        files=[("images", ("p.png", PNG, "image/png"))],
    )
    assert too_many.status_code == 422 and "at most 9" in too_many.text
    linked = client.post(
        "/moments",
        data={
            "csrf_token": token,
            "link_url": "https://example.com/tea",
            "link_title": "春茶",
            "link_image_url": f"{images.url}/shop/tea.png",
        },
        files=[("images", ("", b"", "application/octet-stream"))],
        follow_redirects=False,
    )
    assert linked.status_code == 303, linked.text
    assert _moment_bodies(fake)[-1]["attachments"][0]["link"]["media_id"] == fake.uploads[-1]
