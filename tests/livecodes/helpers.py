"""Live-code test data: staff members and codes through the service."""

from __future__ import annotations

from typing import Any

from siyu.auth.models import Role
from siyu.core.db import Database
from siyu.livecodes import service
from siyu.livecodes.models import LiveCode
from siyu.livecodes.schemas import LiveCodeIn, StaffIn
from tests.factories import Member, make_member


def staff_members(db: Database, workspace_id: int, count: int) -> list[Member]:
    with db.transaction() as session:
        return [
            make_member(session, workspace_id=workspace_id, role=Role.STAFF, name=f"导购{i}")
            for i in range(count)
        ]


def make_code(db: Database, owner: Member, staff: list[StaffIn] | list[Member], **fields: Any) -> LiveCode:
    specs = [s if isinstance(s, StaffIn) else StaffIn(user_id=s.user_id) for s in staff]
    spec = LiveCodeIn(
        name=fields.pop("name", "门店桌贴"),
        placement=fields.pop("placement", "store_table"),
        staff=specs,
        **fields,
    )
    with db.transaction() as session:
        return service.create_live_code(session, actor=owner.actor, spec=spec)
