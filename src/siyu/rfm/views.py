"""The RFM and lifecycle page (分层): the eight RFM layers with their customers, share of money and
mean recency; customers per lifecycle stage; and the flows between stages over the last 90 days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.auth.service import Permission
from siyu.core.timeutil import utcnow
from siyu.lifecycle import service as lifecycle
from siyu.rfm import service as rfm
from siyu.web.deps import CurrentActor, DbSession
from siyu.web.templating import render

router = APIRouter(include_in_schema=False)
FLOW_DAYS = 90


@router.get("/rfm")
def rfm_page(request: Request, session: DbSession, actor: CurrentActor) -> Response:
    actor.require(Permission.READ)
    layers = rfm.layer_summary(session, actor=actor)
    total_money = sum(layer.monetary_cents for layer in layers)
    stages = lifecycle.stage_counts(session, actor=actor)
    end = utcnow()
    flows = lifecycle.flows(session, actor=actor, start=end - timedelta(days=FLOW_DAYS), end=end)
    chart: dict[str, Any] = {
        "layers": [layer.layer for layer in layers],
        "customers": [layer.customers for layer in layers],
        "stages": list(stages),
        "stage_counts": list(stages.values()),
        "flows": [
            {"source": f.from_stage or "∅", "target": f.to_stage, "value": f.customers}
            for f in flows
            if f.from_stage and f.from_stage != f.to_stage
        ],
    }
    return render(
        request,
        "rfm/index.html",
        {
            "layers": layers,
            "total_money": total_money,
            "stages": stages,
            "flows": flows,
            "flow_days": FLOW_DAYS,
            "last_run": rfm.last_run_at(session, workspace_id=actor.workspace_id),
            "chart": chart,
        },
        session=session,
        actor=actor,
    )
