"""The staff task inbox: 1v1 follow-ups created by journey steps (or by hand), due and overdue tasks of
the signed-in staff member (every task for admins), completing a task, and per-staff completion rate
and response time — so that staff are held to quantified SOPs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from siyu.auth import service as auth
from siyu.auth.service import Actor, Permission
from siyu.core import audit
from siyu.core.db import days_between
from siyu.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from siyu.core.timeutil import utcnow
from siyu.customers import service as customers
from siyu.journeys.models import StaffTask, TaskStatus

T = StaffTask


def _sees_all(actor: Actor) -> bool:
    return actor.can(Permission.MANAGE)


def list_tasks(
    session: Session,
    *,
    actor: Actor,
    status: str = TaskStatus.OPEN,
    assignee_user_id: int | None = None,
    limit: int = 200,
) -> list[StaffTask]:
    """Tasks by due time (overdue first): a staff member's own; an admin's choice of member, or all."""
    actor.require(Permission.READ)
    if status not in (TaskStatus.OPEN, TaskStatus.DONE):
        raise ValidationFailed(f"{status!r} is not a task status", where="status", hint="open or done")
    query = select(T).where(T.workspace_id == actor.workspace_id, T.status == status)
    if not _sees_all(actor):
        query = query.where(T.assignee_user_id == actor.user_id)
    elif assignee_user_id is not None:
        query = query.where(T.assignee_user_id == assignee_user_id)
    order = T.due_at if status == TaskStatus.OPEN else T.completed_at.desc()
    return list(session.scalars(query.order_by(order, T.id).limit(max(1, min(limit, 1000)))))


def create_task(
    session: Session, *, actor: Actor, customer_id: int, title: str, due_at: datetime, note: str = ""
) -> StaffTask:
    """A follow-up by hand, for the customer's owner (or nobody, for an admin to pick up)."""
    actor.require(Permission.WRITE)
    customers.ensure_visible(session, actor=actor, customer_id=customer_id)
    cleaned = " ".join((title or "").split())
    if not cleaned or len(cleaned) > 200:
        raise ValidationFailed("a task needs a title of 1 to 200 characters", where="title")
    if due_at.tzinfo is None:
        raise ValidationFailed(
            "due_at has no time zone", where="due_at", hint="e.g. 2026-06-01T10:00:00+08:00"
        )
    owner = customers.get_visible_customer(session, actor=actor, customer_id=customer_id).owner_user_id
    task = StaffTask(
        workspace_id=actor.workspace_id,
        customer_id=customer_id,
        assignee_user_id=owner,
        title=cleaned,
        note=note,
        status=TaskStatus.OPEN,
        due_at=due_at,
        created_at=utcnow(),
    )
    session.add(task)
    session.flush()
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="staff_task.created",
        target_type="staff_task",
        target_id=task.id,
    )
    return task


def complete_task(
    session: Session, *, actor: Actor, task_id: int, outcome: str = "", now: datetime | None = None
) -> StaffTask:
    """Mark a task done with what came of it; staff complete their own tasks, admins any."""
    actor.require(Permission.READ)  # staff may read only, and complete the tasks given to them
    task = session.scalar(
        select(T).where(T.id == task_id, T.workspace_id == actor.workspace_id).with_for_update()
    )
    if task is None:
        raise NotFound(f"no task {task_id} in this workspace", where="task_id")
    if not _sees_all(actor) and task.assignee_user_id != actor.user_id:
        raise PermissionDenied("this task is another member's", where="task_id", hint="ask an admin")
    if task.status == TaskStatus.DONE:
        raise Conflict(f"task {task_id} was completed already", where="status")
    task.status = TaskStatus.DONE
    task.completed_at = now or utcnow()
    task.completed_by_user_id = actor.user_id
    task.outcome = (outcome or "")[:2000]
    audit.record(
        session,
        workspace_id=actor.workspace_id,
        actor_user_id=actor.user_id,
        action="staff_task.completed",
        target_type="staff_task",
        target_id=task.id,
    )
    return task


@dataclass
class StaffFigures:
    user_id: int | None
    display_name: str
    total: int
    done: int
    open: int
    overdue: int
    done_on_time: int
    completion_rate: float  # done / total
    mean_response_hours: float | None  # created → completed, over done tasks


def staff_figures(
    session: Session, *, actor: Actor, since: datetime | None = None, now: datetime | None = None
) -> list[StaffFigures]:
    """Per assignee, over the tasks created since `since` (default: 30 days): how many, done, open,
    overdue, done by their due time, the completion rate and the mean response time (one SQL
    statement). Staff see their own line only."""
    actor.require(Permission.READ)
    now = now or utcnow()
    since = since or now - timedelta(days=30)
    done = T.status == TaskStatus.DONE
    response_days = days_between(session, T.completed_at, T.created_at)
    query = (
        select(
            T.assignee_user_id,
            func.count(),
            func.sum(case((done, 1), else_=0)),
            func.sum(case((~done & (T.due_at < now), 1), else_=0)),
            func.sum(case((done & (T.completed_at <= T.due_at), 1), else_=0)),
            func.avg(case((done, response_days), else_=None)),
        )
        .where(T.workspace_id == actor.workspace_id, T.created_at >= since)
        .group_by(T.assignee_user_id)
    )
    if not _sees_all(actor):
        query = query.where(T.assignee_user_id == actor.user_id)
    names = {m.user_id: m.display_name for m in auth.list_members(session, workspace_id=actor.workspace_id)}
    found = []
    for user_id, total, done_count, overdue, on_time, mean_days in session.execute(query):
        total, done_count = int(total), int(done_count or 0)
        found.append(
            StaffFigures(
                user_id=user_id,
                display_name=names.get(user_id, "") if user_id is not None else "",
                total=total,
                done=done_count,
                open=total - done_count,
                overdue=int(overdue or 0),
                done_on_time=int(on_time or 0),
                completion_rate=done_count / total if total else 0.0,
                mean_response_hours=float(mean_days) * 24 if mean_days is not None else None,
            )
        )
    return sorted(found, key=lambda f: (f.user_id is None, f.display_name, f.user_id or 0))
