"""Group live codes: the current group's QR is handed out until the group reaches the cap, then the
next one's; an expired QR, a dismissed or a full group is skipped; hand-outs are counted per group."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from siyu.communities import codes, service
from siyu.communities.schemas import GroupCodeIn
from siyu.core.db import Database
from siyu.core.errors import NotFound, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.wecom import service as wecom
from tests.communities.helpers import chat, png, store
from tests.factories import member


def _groups(db: Database, workspace_id: int, n: int, *, members: int = 0) -> list[str]:
    owner = member(db, workspace_id)
    with db.transaction() as session:
        chat_ids = [
            store(session, workspace_id, chat(f"群{i}", [f"wm{i}-{m}" for m in range(members)]))
            for i in range(n)
        ]
        for chat_id in chat_ids:
            service.save_qr(session, actor=owner.actor, chat_id=chat_id, image=png())
    return chat_ids


@pytest.mark.slow
def test_450_joins_over_three_groups_of_cap_200_fill_200_200_50(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    chat_ids = _groups(db, workspace_id, 3)
    with db.transaction() as session:
        code = codes.create_code(
            session, actor=owner.actor, spec=GroupCodeIn(name="门店入群", chat_ids=chat_ids)
        )
        token = code.token
    handed: list[str | None] = []
    for _ in range(450):
        with db.transaction() as session:
            result, qr = codes.hand_out(session, token=token)
            handed.append(result.chat_id)
            assert qr is not None and qr.chat_id == result.chat_id
    assert [handed.count(c) for c in chat_ids] == [200, 200, 50]
    assert handed[:200] == [chat_ids[0]] * 200 and handed[200] == chat_ids[1]  # in order, one at a time
    with db.reader() as session:
        described = codes.describe(
            session, code=codes.get_code(session, workspace_id=workspace_id, code_id=code.id)
        )
    assert [(g.handed_out, g.open) for g in described.groups] == [(200, False), (200, False), (50, True)]
    assert (described.handed_out, described.turned_away) == (450, 0)


def test_an_expired_qr_or_a_full_or_dismissed_group_is_skipped(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    expired, dismissed, full, good = _groups(db, workspace_id, 4)
    with db.transaction() as session:
        qr = service.qr_of(session, workspace_id=workspace_id, chat_id=expired)
        assert qr is not None
        qr.expires_at = utcnow() - timedelta(seconds=1)  # seven days have passed
        wecom.get_group(session, workspace_id=workspace_id, chat_id=dismissed).dismissed_at = utcnow()  # type: ignore[union-attr]
        store(session, workspace_id, chat("满群", [f"wmF{i}" for i in range(3)], chat_id=full))
        code = codes.create_code(
            session,
            actor=owner.actor,
            spec=GroupCodeIn(name="小群", chat_ids=[expired, dismissed, full, good], cap=3),
        )
    got = []
    for _ in range(4):
        with db.transaction() as session:
            got.append(codes.hand_out(session, token=code.token)[0].chat_id)
    assert got == [good, good, good, None]  # the fourth visitor finds every group closed
    with db.reader() as session:
        described = codes.describe(
            session, code=codes.get_code(session, workspace_id=workspace_id, code_id=code.id)
        )
    assert [g.open for g in described.groups] == [False, False, False, False]
    assert described.turned_away == 1


def test_codes_refuse_bad_input_and_unknown_tokens(db: Database, workspace_id: int) -> None:
    owner = member(db, workspace_id)
    [chat_id] = _groups(db, workspace_id, 1)
    with db.transaction() as session:
        for spec, where in [
            (GroupCodeIn(name=" ", chat_ids=[chat_id]), "name"),
            (GroupCodeIn(name="x", chat_ids=[chat_id], cap=201), "cap"),
            (GroupCodeIn(name="x", chat_ids=[]), "chat_ids"),
            (GroupCodeIn(name="x", chat_ids=[chat_id, "wrOTHER"]), "chat_ids[1]"),
        ]:
            with pytest.raises(ValidationFailed) as refused:
                codes.create_code(session, actor=owner.actor, spec=spec)
            assert refused.value.where == where
        code = codes.create_code(session, actor=owner.actor, spec=GroupCodeIn(name="x", chat_ids=[chat_id]))
        codes.set_active(session, actor=owner.actor, code_id=code.id, active=False)
    for token in [code.token, "x" * 22, "../../etc/passwd", ""]:
        with db.transaction() as session, pytest.raises(NotFound) as missing:
            codes.hand_out(session, token=token)
        assert missing.value.message == codes.NOT_FOUND_MESSAGE
    with db.reader() as session:
        assert (
            session.scalar(select(codes.GroupCodeJoin.id).where(codes.GroupCodeJoin.code_id == code.id))
            is None
        )
