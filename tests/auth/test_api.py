"""API tokens over HTTP: the caller is recognised and the token's last use is recorded after the response."""

from __future__ import annotations

from sqlalchemy import select

from siyu.auth.models import ApiToken
from siyu.core.db import Database
from tests.factories import api_client, member


def test_get_request_records_token_use_without_writing_in_the_request(
    db: Database, workspace_id: int
) -> None:
    owner = member(db, workspace_id)
    client = api_client(db)
    response = client.get("/api/me", headers=owner.headers)
    assert response.status_code == 200
    assert response.json()["workspace_id"] == workspace_id
    with db.reader() as session:
        used = session.scalars(
            select(ApiToken.last_used_at).where(ApiToken.workspace_id == workspace_id)
        ).all()
    assert len(used) == 1 and used[0] is not None


def test_a_wrong_token_is_refused(db: Database) -> None:
    response = api_client(db).get("/api/me", headers={"Authorization": "Bearer sy_not-a-token"})
    assert response.status_code == 401
    assert "invalid or revoked API token" in response.json()["message"]
