"""The shipped SOP templates: definitions for the common journeys, to start from and edit.

- `welcome`: a new WeCom friend (optionally from one live code) gets messages on day 0, 1, 3 and 7 and
  a 1v1 follow-up task for their owner on day 7.
- `post_purchase`: after an order, a care message the next day, then a repurchase reminder at the
  customer's own expected cycle (the average interval between their orders, from the rollups); a new
  order is the goal.
- `dormant`: a customer turning dormant (沉睡) gets a win-back message (and a coupon if a template is
  given), then a follow-up task if they have not ordered within 7 days; ordering is the goal.
- `birthday`: a greeting (and a coupon) at 10:00 on the birthday, once a year.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siyu.core.errors import NotFound

CHANNELS = ["wecom", "sms"]


@dataclass(frozen=True)
class Template:
    key: str
    name_zh: str
    name_en: str


TEMPLATES = (
    Template("welcome", "新客欢迎 SOP（第 0/1/3/7 天）", "New-customer welcome (day 0/1/3/7)"),
    Template("post_purchase", "购后关怀与复购提醒", "Post-purchase care and repurchase reminder"),
    Template("dormant", "沉睡客户唤醒", "Dormant reactivation"),
    Template("birthday", "生日关怀", "Birthday"),
)


def _text(text: str) -> dict[str, Any]:
    return {"wecom": {"text": text}, "sms": {"text": text}}


def _send(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "kind": "send", "channels": CHANNELS, "content": _text(text), **extra}


def template_definition(
    key: str, *, live_code_id: int | None = None, coupon_template_id: int | None = None
) -> dict[str, Any]:
    """The definition of a shipped template (the optional ids narrow the trigger or add a coupon step)."""
    if key == "welcome":
        trigger: dict[str, Any] = {"kind": "event", "type": "wecom.friend_added"}
        if live_code_id is not None:
            trigger["live_code_id"] = live_code_id
        return {
            "trigger": trigger,
            "reentry": {"mode": "never"},
            "steps": [
                _send("day0", "欢迎加入！有任何问题随时找我。"),
                {"id": "wait1", "kind": "wait", "days": 1},
                _send("day1", "给你介绍一下我们的招牌产品。"),
                {"id": "wait3", "kind": "wait", "days": 2},
                _send("day3", "新人专享福利已经准备好了。"),
                {"id": "wait7", "kind": "wait", "days": 4},
                _send("day7", "用得怎么样？欢迎告诉我你的感受。"),
                {"id": "followup", "kind": "task", "title": "新客第 7 天 1v1 回访", "due_hours": 24},
            ],
        }
    if key == "post_purchase":
        return {
            "trigger": {"kind": "event", "type": "order.placed"},
            "reentry": {"mode": "always"},
            "goal": {"event": "order.placed"},
            "steps": [
                {"id": "next_day", "kind": "wait", "days": 1},
                _send("care", "收到货了吗？使用上有问题随时告诉我。", purpose="transactional"),
                {
                    "id": "cycle",
                    "kind": "wait",
                    "days_from": "repurchase_cycle",
                    "days_before": 3,
                    "days": 30,
                },
                {"id": "morning", "kind": "wait_until", "time": "10:00"},
                _send("reminder", "快用完了吧？需要的话我帮你留一份。"),
            ],
        }
    if key == "dormant":
        steps: list[dict[str, Any]] = [_send("winback", "好久不见，给你准备了一份回归礼。")]
        if coupon_template_id is not None:
            steps.append({"id": "gift", "kind": "coupon", "template_id": coupon_template_id})
        steps += [
            {
                "id": "watch",
                "kind": "wait_event",
                "event": "order.placed",
                "timeout_hours": 168,
                "next": "done",
                "timeout_next": "call",
            },
            {"id": "call", "kind": "task", "title": "沉睡客户 1v1 唤醒", "due_hours": 48, "next": "done"},
            {"id": "done", "kind": "exit"},
        ]
        return {
            "trigger": {"kind": "event", "type": "lifecycle.changed", "stage": "dormant"},
            "reentry": {"mode": "after_days", "days": 90},
            "goal": {"event": "order.placed"},
            "steps": steps,
        }
    if key == "birthday":
        steps = [_send("greeting", "生日快乐！今天的你值得一份惊喜。")]
        if coupon_template_id is not None:
            steps.append({"id": "gift", "kind": "coupon", "template_id": coupon_template_id})
        return {
            "trigger": {"kind": "date", "attribute": "birthday", "days_before": 0, "at": "10:00"},
            "reentry": {"mode": "after_days", "days": 300},
            "steps": steps,
        }
    raise NotFound(f"no journey template {key!r}", where="template", hint=", ".join(t.key for t in TEMPLATES))
