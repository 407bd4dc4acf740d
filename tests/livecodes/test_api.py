"""The live-code JSON API and pages, on both engines: create, read, stats; QR images decoded with a
real decoder (zxing-cpp) back to the landing URL; roles; the form in both languages."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.web.app import create_app
from tests.factories import make_store, make_tag, member
from tests.livecodes.helpers import staff_members
from tests.web.conftest import csrf_of, log_in, make_login


def _decode_png(data: bytes) -> str:
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    return found.text


@pytest.fixture
def client(db: Database) -> TestClient:
    return TestClient(create_app(database=db), base_url="https://brand.example")


def test_create_read_and_stats_through_the_api(client: TestClient, db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    a, b = staff_members(db, workspace_id, 2)
    with db.transaction() as session:
        tag = make_tag(session, actor=owner.actor)
        store = make_store(session, workspace_id=workspace_id)
    body = {
        "name": "静安店 3 号桌",
        "placement": "store_table",
        "store_id": store.id,
        "strategy": "weighted",
        "staff": [
            {"user_id": a.user_id, "weight": 2, "hours": "09:00-21:00", "daily_cap": 50},
            {"user_id": b.user_id, "is_backup": True},
        ],
        "auto_tag_ids": [tag.id],
        "welcome_text": "欢迎光临",
        "cost_cents": 30000,
    }
    created = client.post("/api/live-codes", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    code = created.json()
    assert code["landing_path"].startswith("/l/") and code["state"].startswith("lc")
    assert [s["hours"] for s in code["staff"]] == ["09:00-21:00", None]
    assert client.get(f"/api/live-codes/{code['id']}", headers=owner.headers).json() == code
    assert [c["id"] for c in client.get("/api/live-codes", headers=owner.headers).json()] == [code["id"]]
    offline = client.put(
        f"/api/live-codes/{code['id']}/staff/{a.user_id}/online",
        json={"online": False},
        headers=owner.headers,
    )
    assert offline.json()["staff"][0]["is_online"] is False
    stats = client.get(f"/api/live-codes/{code['id']}/stats", headers=owner.headers).json()
    assert (
        len(stats["days"]) == 30
        and stats["totals"]["scans"] == 0
        and stats["totals"]["pass_through_rate"] is None
    )
    assert client.get(f"/api/live-codes/{code['id']}/adds", headers=owner.headers).json() == []
    refused = client.post("/api/live-codes", json={**body, "staff": []}, headers=owner.headers)
    assert refused.status_code == 422 and refused.json()["where"] == "staff"
    analyst = member(db, workspace_id, role=Role.ANALYST)
    assert client.post("/api/live-codes", json=body, headers=analyst.headers).status_code == 403
    disabled = client.post(
        f"/api/live-codes/{code['id']}/active", json={"active": False}, headers=owner.headers
    )
    assert disabled.json()["is_active"] is False


@pytest.mark.parametrize("size", ["screen", "5cm", "8cm", "15cm"])
def test_qr_png_decodes_to_the_landing_url_at_each_print_size(
    client: TestClient, db: Database, workspace_id: int, size: str
) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 1)
    code = client.post(
        "/api/live-codes",
        json={"name": "海报", "placement": "poster", "staff": [{"user_id": staff[0].user_id}]},
        headers=owner.headers,
    ).json()
    response = client.get(
        f"/api/live-codes/{code['id']}/qr.png", params={"size": size}, headers=owner.headers
    )
    assert response.headers["content-type"] == "image/png"
    assert _decode_png(response.content) == "https://brand.example" + code["landing_path"]
    image = Image.open(io.BytesIO(response.content))
    expected = {"screen": 295, "5cm": 591, "8cm": 945, "15cm": 1772}[size]  # pixels at 300 dpi
    assert expected * 0.9 <= image.width <= expected and round(image.info["dpi"][0]) == 300


def test_qr_svg_has_print_size_and_renders_to_the_same_url(
    client: TestClient, db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 1)
    code = client.post(
        "/api/live-codes",
        json={"name": "包裹卡", "placement": "parcel_insert", "staff": [{"user_id": staff[0].user_id}]},
        headers=owner.headers,
    ).json()
    response = client.get(
        f"/api/live-codes/{code['id']}/qr.svg", params={"size": "5cm", "download": 1}, headers=owner.headers
    )
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "attachment" in response.headers["content-disposition"]
    svg = response.text
    assert 'width="50.0mm"' in svg and 'height="50.0mm"' in svg
    # draw the SVG's path with Pillow (no SVG renderer needed: segno writes h/v/m moves) and decode it
    modules = _rasterize_segno_svg(svg)
    assert _decode_png(modules) == "https://brand.example" + code["landing_path"]
    bad = client.get(f"/api/live-codes/{code['id']}/qr.svg", params={"size": "1m"}, headers=owner.headers)
    assert bad.status_code == 422 and bad.json()["where"] == "size"
    assert client.get(f"/api/live-codes/{code['id']}/qr.gif", headers=owner.headers).status_code == 422


def _rasterize_segno_svg(svg: str) -> bytes:
    """Rasterise the single path segno writes (M/m moves and h runs on the module grid) to a PNG."""
    path = re.search(r' d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    size = int(
        float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))
        / float(re.search(r"scale\(([\d.]+)\)", svg).group(1))
        + 0.5
    )  # type: ignore[union-attr]
    image = Image.new("L", (size * 8, size * 8), 255)
    pixels = image.load()
    x = y = 0.0
    for op, number in re.findall(r"([MmHhVv])(-?[\d.]+(?:\s-?[\d.]+)?)", path):
        values = [float(v) for v in number.split()]
        if op == "M":
            x, y = values
        elif op == "m":
            x, y = x + values[0], y + values[1]
        elif op in "hH":
            end = x + values[0] if op == "h" else values[0]
            row = int(y - 0.5)
            for col in range(int(x), int(end)):
                for dy in range(8):
                    for dx in range(8):
                        pixels[col * 8 + dx, row * 8 + dy] = 0  # type: ignore[index]
            x = end
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_qr_with_a_centre_logo_still_decodes(client: TestClient, db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    staff = staff_members(db, workspace_id, 1)
    code = client.post(
        "/api/live-codes",
        json={"name": "活动", "placement": "event", "staff": [{"user_id": staff[0].user_id}]},
        headers=owner.headers,
    ).json()
    logo = io.BytesIO()
    Image.new("RGB", (300, 300), (220, 30, 30)).save(logo, format="PNG")
    response = client.post(
        f"/api/live-codes/{code['id']}/qr-logo.png",
        files={"logo": ("logo.png", logo.getvalue(), "image/png")},
        data={"size": "8cm"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert image.getpixel((image.width // 2, image.height // 2)) == (220, 30, 30)  # the logo is there
    assert _decode_png(response.content) == "https://brand.example" + code["landing_path"]
    junk = client.post(
        f"/api/live-codes/{code['id']}/qr-logo.png",
        files={"logo": ("logo.png", b"not an image", "image/png")},
        headers=owner.headers,
    )
    assert junk.status_code == 422 and junk.json()["where"] == "logo"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pages_in_both_languages(db: Database, workspace_id: int, lang: str) -> None:
    client = TestClient(create_app(database=db))
    who = make_login(db, workspace_id, Role.OWNER, name="店长")
    staff = staff_members(db, workspace_id, 1)
    client.cookies.set("lang", lang)
    token = log_in(client, who)
    form = client.get("/live-codes/new")
    assert form.status_code == 200 and ("新建活码" if lang == "zh-CN" else "New live code") in form.text
    refused = client.post("/live-codes", data={"csrf_token": token, "name": "", "placement": "poster"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    created = client.post(
        "/live-codes",
        data={
            "csrf_token": token,
            "name": "海报 A",
            "placement": "poster",
            "strategy": "round_robin",
            f"staff_{staff[0].user_id}": "on",
            f"weight_{staff[0].user_id}": "1",
            f"days_{staff[0].user_id}": "12345",
            "cost": "300",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    detail = client.get(created.headers["location"])
    assert detail.status_code == 200
    assert ("扫码次数" if lang == "zh-CN" else "Scans") in detail.text and "¥300.00" in detail.text
    listing = client.get("/live-codes")
    assert "海报 A" in listing.text and ("活码" in listing.text)
    edit_url = created.headers["location"].split("?")[0] + "/edit"
    edit = client.get(edit_url)
    assert 'value="海报 A"' in edit.text
    assert csrf_of(edit.text) == token
