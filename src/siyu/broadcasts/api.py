"""JSON routes of broadcasts (群发): create, start, pause, resume, cancel, progress and results."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter

from siyu.auth.service import Actor, Permission
from siyu.broadcasts import service
from siyu.broadcasts.models import Broadcast
from siyu.broadcasts.schemas import BroadcastIn, BroadcastOut, GroupOut, ProgressOut, ResultsOut
from siyu.web.deps import DbSession, require

router = APIRouter(prefix="/api/broadcasts", tags=["broadcasts"])


def broadcast_out(broadcast: Broadcast) -> BroadcastOut:
    return BroadcastOut(
        id=broadcast.id,
        name=broadcast.name,
        status=broadcast.status,
        purpose=broadcast.purpose,
        segment_id=broadcast.segment_id,
        listed_customers=len(broadcast.customer_ids),
        channel_preference=broadcast.channel_preference,
        content=broadcast.content,
        variants=broadcast.variants,
        holdout_share=broadcast.holdout_share,
        experiment_id=broadcast.experiment_id,
        send_at=broadcast.send_at,
        audience_size=broadcast.audience_size,
        decided_count=broadcast.decided_count,
        created_at=broadcast.created_at,
        started_at=broadcast.started_at,
        finished_at=broadcast.finished_at,
    )


@router.get("", response_model=list[BroadcastOut])
def list_all(session: DbSession, actor: Actor = require(Permission.READ)) -> list[BroadcastOut]:
    return [broadcast_out(b) for b in service.list_broadcasts(session, actor=actor)]


@router.post("", response_model=BroadcastOut, status_code=201)
def create(body: BroadcastIn, session: DbSession, actor: Actor = require(Permission.WRITE)) -> BroadcastOut:
    """A draft broadcast; with `start`, started (or scheduled, with `send_at`) at once."""
    broadcast = service.create_broadcast(
        session,
        actor=actor,
        name=body.name,
        purpose=body.purpose,
        channel_preference=body.channel_preference,
        content=body.content,
        segment_id=body.segment_id,
        customer_ids=body.customer_ids,
        identity_kind=body.identity_kind,
        identity_values=body.identity_values,
        variants={k: v.model_dump() for k, v in (body.variants or {}).items()},
        holdout_share=body.holdout_share,
        send_at=body.send_at,
        conversion_window_days=body.conversion_window_days,
        coupon_template_id=body.coupon_template_id,
    )
    if body.start:
        broadcast = service.start_broadcast(session, actor=actor, broadcast_id=broadcast.id)
    return broadcast_out(broadcast)


@router.get("/{broadcast_id}", response_model=BroadcastOut)
def get(broadcast_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> BroadcastOut:
    return broadcast_out(service.get_broadcast(session, actor=actor, broadcast_id=broadcast_id))


@router.post("/{broadcast_id}/start", response_model=BroadcastOut)
def start(broadcast_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> BroadcastOut:
    """Take the audience snapshot now (workers decide and send it), or schedule it for its send_at."""
    return broadcast_out(service.start_broadcast(session, actor=actor, broadcast_id=broadcast_id))


@router.post("/{broadcast_id}/pause", response_model=BroadcastOut)
def pause(broadcast_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> BroadcastOut:
    return broadcast_out(service.pause_broadcast(session, actor=actor, broadcast_id=broadcast_id))


@router.post("/{broadcast_id}/resume", response_model=BroadcastOut)
def resume(broadcast_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> BroadcastOut:
    return broadcast_out(service.resume_broadcast(session, actor=actor, broadcast_id=broadcast_id))


@router.post("/{broadcast_id}/cancel", response_model=BroadcastOut)
def cancel(broadcast_id: int, session: DbSession, actor: Actor = require(Permission.WRITE)) -> BroadcastOut:
    return broadcast_out(service.cancel_broadcast(session, actor=actor, broadcast_id=broadcast_id))


@router.get("/{broadcast_id}/progress", response_model=ProgressOut)
def progress(broadcast_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> ProgressOut:
    """Every customer of the audience in one count: awaiting decision, holdout, cancelled before being
    decided, or their message's status (queued, deferred, held, sent, delivered, failed, suppressed)."""
    return ProgressOut(
        **dataclasses.asdict(service.progress(session, actor=actor, broadcast_id=broadcast_id))
    )


@router.get("/{broadcast_id}/results", response_model=ResultsOut)
def results(broadcast_id: int, session: DbSession, actor: Actor = require(Permission.READ)) -> ResultsOut:
    found = service.results(session, actor=actor, broadcast_id=broadcast_id)
    return ResultsOut(
        broadcast_id=found.broadcast_id,
        started_at=found.started_at,
        window_days=found.window_days,
        groups=[GroupOut(**dataclasses.asdict(g), conversion_rate=g.conversion_rate) for g in found.groups],
        clicked=found.clicked,
        clicks_note=found.clicks_note,
        experiment=dataclasses.asdict(found.experiment) if found.experiment else None,
    )
