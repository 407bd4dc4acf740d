"""WeCom delivery: marketing messages over channel "wecom" become enterprise mass messages (企业群发).

A batch adapter: the messages of one claim are grouped by workspace, sending staff member (the friend the
outbox resolved into `route["sender"]`) and content; each group is one `add_msg_template` call carrying
the external userids of that staff member's customers. Every message of the group is `sent` with the
task's msgid as its provider id; recipients WeCom names in `fail_list` fail at once. The staff member then
confirms the task in WeCom; `reach.tasks.poll_wecom_deliveries` reads the send results and marks each
message delivered or failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from siyu.reach.adapters.base import OutboundMessage, SendResult
from siyu.wecom.client import WecomApiError, WecomClient

MAX_RECIPIENTS = 10000  # add_msg_template takes at most 10000 external_userid per call
# refusals no retry can change: the sender is no member (any more), or not the customer's friend
PERMANENT_ERRCODES = frozenset({40003, 60111, 84061})


def _body(content: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    text = str(content.get("text") or "")
    if text.strip():
        body["text"] = {"content": text}
    attachments = content.get("attachments")
    if attachments:
        body["attachments"] = list(attachments)
    return body


class WecomMassAdapter:
    """Sends channel "wecom" as mass messages; `client_for(workspace_id)` gives the workspace's API client
    (built from its WeCom settings by the registry, so this module reads no table)."""

    kind = "wecom"
    # one claim of a broadcast should be one task per staff member, not one per fifty customers: each
    # task is one more confirmation for the staff member in WeCom
    max_batch = MAX_RECIPIENTS

    def __init__(self, *, client_for: Callable[[int], WecomClient]) -> None:
        self.client_for = client_for

    def send(self, message: OutboundMessage) -> SendResult:
        return self.send_batch([message])[0]

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult | None] = [None] * len(messages)
        groups: dict[tuple[int, str, str], list[int]] = {}
        for index, message in enumerate(messages):
            sender = message.route.get("sender", "")
            if not sender:
                results[index] = SendResult.failed(
                    "the customer is no WeCom friend of any staff member any more: nobody can send it"
                )
                continue
            if not _body(message.content):
                results[index] = SendResult.failed("the WeCom content has neither text nor attachments")
                continue
            key = json.dumps(message.content, sort_keys=True, ensure_ascii=False)
            groups.setdefault((message.workspace_id, sender, key), []).append(index)
        clients: dict[int, WecomClient] = {}
        try:
            for (workspace_id, sender, _key), indexes in groups.items():
                try:
                    client = clients.get(workspace_id) or clients.setdefault(
                        workspace_id, self.client_for(workspace_id)
                    )
                except Exception as exc:  # WeCom not set up (any more): retried, then dead-lettered
                    for index in indexes:
                        results[index] = SendResult.retry(f"no WeCom client for the workspace: {exc}")
                    continue
                for start in range(0, len(indexes), MAX_RECIPIENTS):
                    chunk = indexes[start : start + MAX_RECIPIENTS]
                    self._send_chunk(client, sender, [messages[i] for i in chunk], chunk, results)
        finally:
            for client in clients.values():
                client.close()
        return [r if r is not None else SendResult.retry("not sent") for r in results]

    def _send_chunk(
        self,
        client: WecomClient,
        sender: str,
        chunk: list[OutboundMessage],
        indexes: list[int],
        results: list[SendResult | None],
    ) -> None:
        body = {
            "chat_type": "single",
            "external_userid": list(dict.fromkeys(m.address for m in chunk)),
            "sender": sender,
            **_body(chunk[0].content),
        }
        try:
            answer = client.post("/cgi-bin/externalcontact/add_msg_template", body)
        except WecomApiError as exc:
            for index in indexes:
                if exc.errcode in PERMANENT_ERRCODES:
                    results[index] = SendResult.failed(str(exc))
                else:
                    results[index] = SendResult.retry(str(exc))
            return
        msgid = str(answer["msgid"])
        refused = set(answer.get("fail_list") or [])
        for index, message in zip(indexes, chunk, strict=True):
            if message.address in refused:
                results[index] = SendResult.failed(
                    f"WeCom refused the recipient of mass message {msgid} (not a friend of {sender})"
                )
            else:
                results[index] = SendResult.sent(msgid)
