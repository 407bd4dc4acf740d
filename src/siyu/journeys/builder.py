"""What the journey builder page needs besides the definition: the choices it offers (segments, event
types, message and coupon templates, tags, experiments, live codes), read from their domains' services,
and the place of a refused definition's error (the step and field it names), so the page shows it there.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from siyu.auth.service import Actor
from siyu.content import service as content
from siyu.content.service.templates import CHANNELS as CONTENT_CHANNELS
from siyu.core.errors import SiyuError
from siyu.coupons import service as coupons
from siyu.experiments import service as experiments
from siyu.journeys import definition as definitions
from siyu.lifecycle import service as lifecycle
from siyu.livecodes import service as livecodes
from siyu.segments import service as segments
from siyu.tags import service as tags

# a definition's error names its place as `steps[2] (wait_more).next`, `steps (care).content.sms.text`,
# `steps[1].id`, `trigger.segment_id`, `reentry.days`, `goal.event` or `definition, line 3 column 5`
_STEP_WHERE = re.compile(r"^steps(?:\[(?P<index>\d+)\])?(?: \((?P<id>[^)]*)\))?(?:\.(?P<field>[\w.\-]+))?")
_SECTION_WHERE = re.compile(r"^(?P<section>trigger|reentry|goal)(?:\.(?P<field>\w+))?")


def catalog(session: Session, *, actor: Actor) -> dict[str, Any]:
    """The choices of the builder's lists, all of the actor's workspace."""
    workspace_id = actor.workspace_id
    experiment_choices = []
    for experiment in experiments.list_experiments(session, actor=actor):
        _, variants = experiments.get_experiment(session, actor=actor, experiment_id=experiment.id)
        experiment_choices.append(
            {
                "id": experiment.id,
                "name": experiment.name,
                "status": experiment.status,
                "holdout": experiment.holdout_share > 0,
                "variants": [v.name for v in variants],
            }
        )
    return {
        "trigger_kinds": list(definitions.TRIGGER_KINDS),
        "step_kinds": list(definitions.STEP_KINDS),
        "event_types": list(definitions.EVENT_TYPES),
        "reentry_modes": list(definitions.REENTRY_MODES),
        "date_attributes": list(definitions.DATE_ATTRIBUTES),
        "channels": [c for c in CONTENT_CHANNELS if c != "default"],
        "stages": [str(stage) for stage in lifecycle.Stage],
        "segments": [
            {"id": s.id, "name": s.name} for s in segments.list_segments(session, workspace_id=workspace_id)
        ],
        "tags": [
            {"id": tag_id, "name": f"{group} / {name}"}
            for tag_id, group, name in tags.tag_names(session, workspace_id=workspace_id)
        ],
        "message_templates": [
            {"id": t.id, "name": t.name, "variants": t.variants}
            for t in content.list_templates(session, workspace_id=workspace_id)
        ],
        "coupon_templates": [
            {"id": t.id, "name": t.name, "status": t.status}
            for t in coupons.list_templates(session, workspace_id=workspace_id)
        ],
        "experiments": experiment_choices,
        "live_codes": [
            {"id": c.id, "name": c.name}
            for c in livecodes.list_live_codes(session, workspace_id=workspace_id)
        ],
    }


def error_place(error: SiyuError | None, document: Any) -> dict[str, Any] | None:
    """Where in the builder a refused definition's error belongs: the step (by id, also when the error
    names only its position) and its first field, or the trigger, re-entry or goal; None when it names
    none of them (the JSON itself is broken)."""
    if error is None or not error.where:
        return None
    where = error.where
    found = _STEP_WHERE.match(where)
    if found and where.startswith("steps"):
        step_id = found["id"]
        if step_id is None and found["index"] is not None:
            steps = document.get("steps") if isinstance(document, dict) else None
            index = int(found["index"])
            if isinstance(steps, list) and index < len(steps) and isinstance(steps[index], dict):
                step_id = steps[index].get("id")
        field = (found["field"] or "").split(".")[0] or None
        place: dict[str, Any] = {"section": "step", "step_id": step_id, "field": field}
        if found["index"] is not None:
            place["index"] = int(found["index"])
        return place
    section = _SECTION_WHERE.match(where)
    if section:
        return {"section": section["section"], "field": section["field"]}
    return None
