"""JSON routes for who is calling (`/api/me`) and for API tokens: create, list, revoke.

Any member may hold tokens acting as themselves; owners and admins (`manage`) see and revoke all of them.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from siyu.auth import service as auth
from siyu.auth.service import Permission
from siyu.web.deps import CurrentActor, DbSession
from siyu.workspaces import service as workspaces

router = APIRouter(prefix="/api", tags=["auth"])


class MeOut(BaseModel):
    user_id: int
    display_name: str
    role: str
    permissions: list[str]
    workspace_id: int
    workspace_slug: str
    workspace_name: str
    via: str


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for, e.g. 'shop sync'.")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str = Field(description="First characters of the token, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="The token itself; shown this once only.")


@router.get("/me", response_model=MeOut)
def me(session: DbSession, actor: CurrentActor) -> MeOut:
    workspace = workspaces.get_workspace(session, workspace_id=actor.workspace_id)
    return MeOut(
        user_id=actor.user_id,
        display_name=actor.display_name,
        role=actor.role.value,
        permissions=[p.value for p in Permission if actor.can(p)],
        workspace_id=workspace.id,
        workspace_slug=workspace.slug,
        workspace_name=workspace.name,
        via=actor.via,
    )


@router.post("/tokens", response_model=NewTokenOut, status_code=201)
def create_token(body: TokenIn, session: DbSession, actor: CurrentActor) -> NewTokenOut:
    """A new token acting as the caller in this workspace."""
    token, row = auth.create_api_token(
        session, workspace_id=actor.workspace_id, user_id=actor.user_id, name=body.name
    )
    return NewTokenOut.model_validate({**TokenOut.model_validate(row).model_dump(), "token": token})


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(session: DbSession, actor: CurrentActor) -> list[TokenOut]:
    """The caller's tokens; every token of the workspace for owners and admins."""
    user_id = None if actor.can(Permission.MANAGE) else actor.user_id
    return [
        TokenOut.model_validate(t)
        for t in auth.list_api_tokens(session, workspace_id=actor.workspace_id, user_id=user_id)
    ]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, session: DbSession, actor: CurrentActor) -> Response:
    auth.revoke_api_token(session, actor=actor, token_id=token_id)
    return Response(status_code=204)
