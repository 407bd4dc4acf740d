"""A local WeCom server for tests: a real HTTP server in a thread, following WeCom's documented contract
for the endpoints siyu calls (request fields, answers, errcodes) and checking the access token."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

WELCOME_CODE_SECONDS = 20
STAT_ZONE = ZoneInfo("Asia/Shanghai")  # the statistics' days and midnights are China Standard Time
STAT_FIGURES = (
    "new_chat_cnt",
    "chat_total",
    "chat_has_msg_cnt",
    "new_member_cnt",
    "member_total",
    "member_has_msg_cnt",
    "msg_total",
    "migrate_trainee_chat_cnt",
)
STAT_ORDER = {1: "new_chat_cnt", 2: "chat_total", 3: "new_member_cnt", 4: "member_total"}


@dataclass
class FakeWecom:
    """The state of the fake corp: who is a member, which customers are friends of whom, and what was
    asked of it (`calls`)."""

    corp_id: str = "wwfakecorp0001"
    secret: str = "fake-secret"
    expires_in: int = 7200
    token_delay: float = 0.0  # seconds gettoken takes (to make concurrent callers overlap)
    staff: set[str] = field(default_factory=lambda: {"zhangsan", "lisi"})
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # external_userid -> external_contact
    friends: set[tuple[str, str]] = field(default_factory=set)  # (userid, external_userid)
    corp_tags: list[dict[str, Any]] = field(default_factory=list)
    group_chats: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (unix)
    welcome_codes: dict[str, float] = field(default_factory=dict)  # code -> issued at (unix)
    welcomes_sent: list[dict[str, Any]] = field(default_factory=list)  # bodies of accepted send_welcome_msg
    mass_messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    contact_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    moment_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    moments: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)  # media ids of accepted uploads
    uploaded: dict[str, bytes] = field(default_factory=dict)  # media id → the multipart body it came in
    # path -> how many of its next calls answer WeCom's transient errcode -1 ("system busy, retry")
    busy: dict[str, int] = field(default_factory=dict)
    # 群聊数据统计: (day of China Standard Time, owner userid) -> the eight figures of that day
    group_stats: dict[tuple[date, str], dict[str, int]] = field(default_factory=dict)
    stat_today: date | None = None  # today in China Standard Time (None: the real one)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what tests do to the corp ------------------------------------------------------------------

    def add_friend(self, userid: str, external_userid: str, *, name: str = "", unionid: str = "") -> str:
        """A customer adds a staff member: the welcome code WeCom would put in the callback."""
        self.contacts.setdefault(
            external_userid, {"external_userid": external_userid, "name": name, "type": 1, "unionid": unionid}
        )
        self.friends.add((userid, external_userid))
        code = "WELCOME" + uuid.uuid4().hex
        self.welcome_codes[code] = time.time()
        return code

    def expire_tokens(self) -> None:
        self.tokens = {t: 0.0 for t in self.tokens}

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.calls if p == path)

    # --- the endpoints --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append((path, body or dict(query)))
        if path == "/cgi-bin/gettoken":
            return self.gettoken(query)
        token = query.get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        expiry = self.tokens.get(token)
        if expiry is None:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if expiry <= time.time():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        with self.lock:
            if self.busy.get(path, 0) > 0:
                self.busy[path] -= 1
                return {"errcode": -1, "errmsg": "system busy"}
        handler = ENDPOINTS.get((method, path))
        if handler is None:
            return {"errcode": 404, "errmsg": f"unknown endpoint {method} {path}"}
        with self.lock:
            return handler(self, query, body)

    def gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if self.token_delay:
            time.sleep(self.token_delay)
        if query.get("corpid") != self.corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if query.get("corpsecret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = "TOKEN" + uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = time.time() + self.expires_in
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}


def _ok(**fields: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **fields}


def _bad(errmsg: str, errcode: int = 40058) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg}


def _add_msg_template(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    chat_type = body.get("chat_type", "single")
    if chat_type not in ("single", "group"):
        return _bad("invalid chat_type")
    if not body.get("text") and not body.get("attachments"):
        return _bad("text or attachments required", 41035)
    sender = body.get("sender")
    if chat_type == "group" and not sender:
        return _bad("sender required for group", 41048)
    if sender and sender not in fake.staff:
        return _bad("invalid userid", 40003)
    recipients: dict[str, list[str]] = {}
    fail_list: list[str] = []
    if chat_type == "single":
        for external in body.get("external_userid") or []:
            staff = sorted(u for u, e in fake.friends if e == external and (not sender or u == sender))
            if not staff:
                fail_list.append(external)
            for user in staff[:1]:
                recipients.setdefault(user, []).append(external)
    else:
        wanted = body.get("chat_id_list")
        for chat_id, chat in fake.group_chats.items():
            if chat["owner"] == sender and (not wanted or chat_id in wanted):
                recipients.setdefault(sender, []).append(chat_id)
    msgid = "msg" + uuid.uuid4().hex
    # "sent": staff who confirmed it; "statuses": a recipient's result other than sent (2 no friend any
    # more, 3 got another mass message that day)
    fake.mass_messages[msgid] = {
        "chat_type": chat_type,
        "recipients": recipients,
        "sent": set(),
        "statuses": {},
    }
    return _ok(fail_list=fail_list, msgid=msgid)


def _get_groupmsg_task(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    message = fake.mass_messages.get(body.get("msgid", ""))
    if message is None:
        return _bad("invalid msgid", 41063)
    tasks = [
        {"userid": user, "status": 1 if user in message["sent"] else 0, "send_time": 1_700_000_000}
        for user in sorted(message["recipients"])
    ]
    return _ok(next_cursor="", task_list=tasks)


def _get_groupmsg_send_result(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    message = fake.mass_messages.get(body.get("msgid", ""))
    if message is None:
        return _bad("invalid msgid", 41063)
    user = body.get("userid", "")
    if user not in fake.staff:
        return _bad("invalid userid", 40003)
    key = "chat_id" if message["chat_type"] == "group" else "external_userid"
    sent = user in message["sent"]
    statuses = message.get("statuses", {})
    rows = [
        {
            key: r,
            "userid": user,
            "status": statuses.get(r, 1) if sent else 0,
            **({"send_time": 1_700_000_000} if sent else {}),
        }
        for r in message["recipients"].get(user, [])
    ]
    return _ok(next_cursor="", send_list=rows)


def _send_welcome_msg(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    code = body.get("welcome_code", "")
    issued = fake.welcome_codes.pop(code, None)  # one use only
    if issued is None or time.time() - issued > WELCOME_CODE_SECONDS:
        return _bad("invalid welcome_code", 41051)
    if not body.get("text") and not body.get("attachments"):
        return _bad("text or attachments required", 41035)
    fake.welcomes_sent.append(body)
    return _ok()


def _mark_tag(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    if (body.get("userid"), body.get("external_userid")) not in fake.friends:
        return _bad("not external contact", 84061)
    known = {t["id"] for g in fake.corp_tags for t in g["tag"]}
    for tag in (body.get("add_tag") or []) + (body.get("remove_tag") or []):
        if tag not in known:
            return _bad("invalid tag id", 40068)
    contact = fake.contacts[body["external_userid"]]
    tags = set(contact.get("tags", [])) | set(body.get("add_tag") or [])
    contact["tags"] = sorted(tags - set(body.get("remove_tag") or []))
    return _ok()


def _get_corp_tag_list(fake: FakeWecom, _q: dict[str, str], _body: dict[str, Any]) -> dict[str, Any]:
    return _ok(tag_group=fake.corp_tags)


def _check_contact_way(fake: FakeWecom, body: dict[str, Any]) -> dict[str, Any] | None:
    state = body.get("state")
    if state is not None and len(state) > 30:
        return _bad("state exceed max length 30", 40058)
    for user in body.get("user") or []:
        if user not in fake.staff:
            return _bad("invalid userid", 40003)
    return None


def _add_contact_way(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    if body.get("type") not in (1, 2) or body.get("scene") not in (1, 2):
        return _bad("invalid type or scene")
    if not body.get("user"):
        return _bad("user or party required", 40058)
    if body["type"] == 1 and len(body["user"]) != 1:
        return _bad("type 1 takes exactly one user", 40058)
    refused = _check_contact_way(fake, body)
    if refused:
        return refused
    config_id = uuid.uuid4().hex
    qr = f"https://wework.qpic.cn/wwpic/{config_id}/0" if body["scene"] == 2 else None
    fake.contact_ways[config_id] = {
        **body,
        "config_id": config_id,
        "qr_code": qr,
        "create_time": int(time.time()),
    }
    return _ok(config_id=config_id, **({"qr_code": qr} if qr else {}))


def _get_contact_way(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    way = fake.contact_ways.get(body.get("config_id", ""))
    if way is None:
        return _bad("invalid config_id", 41044)
    return _ok(contact_way={k: v for k, v in way.items() if k != "create_time"})


LIST_PAGE_MAX = 1000


def _list_contact_way(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """Ways made between start_time and end_time (default: the last 90 days), a page of `limit` (default
    100, at most 1000) config_ids from `cursor` on, and the cursor of the next page ("" at the end)."""
    now = int(time.time())
    start, end = int(body.get("start_time") or now - 90 * 86400), int(body.get("end_time") or now)
    limit = int(body.get("limit") or 100)
    if limit > LIST_PAGE_MAX or start > end:
        return _bad("invalid limit or time range", 40058)
    found = [w["config_id"] for w in fake.contact_ways.values() if start <= w["create_time"] <= end]
    offset = int(body.get("cursor") or 0)
    page = found[offset : offset + limit]
    more = offset + limit < len(found)
    return _ok(contact_way=[{"config_id": c} for c in page], next_cursor=str(offset + limit) if more else "")


def _update_contact_way(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    way = fake.contact_ways.get(body.get("config_id", ""))
    if way is None:
        return _bad("invalid config_id", 41044)
    refused = _check_contact_way(fake, body)
    if refused:
        return refused
    way.update({k: v for k, v in body.items() if k != "config_id"})
    return _ok()


def _del_contact_way(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    if fake.contact_ways.pop(body.get("config_id", ""), None) is None:
        return _bad("invalid config_id", 41044)
    return _ok()


def _add_moment_task(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    attachments = body.get("attachments") or []
    kinds = {a.get("msgtype") for a in attachments}
    if not body.get("text") and not attachments:
        return _bad("text or attachments required", 41035)
    if len(kinds) > 1 or (kinds & {"video", "link"} and len(attachments) > 1) or len(attachments) > 9:
        return _bad("invalid attachments", 40058)
    jobid = "job" + uuid.uuid4().hex
    senders = body.get("visible_range", {}).get("sender_list", {}).get("user_list") or sorted(fake.staff)
    fake.moment_jobs[jobid] = {"polls": 0, "senders": senders, "body": body}
    return _ok(jobid=jobid)


def _upload_attachment(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    # media/upload_attachment: media_type image | video | file, attachment_type 1 (moments) or 2 (product
    # albums), the file as the multipart part "media"
    if query.get("media_type") not in ("image", "video", "file"):
        return _bad("invalid media type", 40004)
    if query.get("attachment_type") not in ("1", "2"):
        return _bad("invalid attachment_type", 40058)
    if not body.get("multipart") or not body.get("has_media"):
        return _bad("media data missing", 41005)
    media_id = "att" + uuid.uuid4().hex
    fake.uploads.append(media_id)
    fake.uploaded[media_id] = body["raw"]
    return _ok(type=query["media_type"], media_id=media_id, created_at=int(time.time()))


def _upload_media(fake: FakeWecom, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    # media/upload (临时素材): type image | voice | video | file, the file as the multipart part "media";
    # the media_id lasts 3 days
    if query.get("type") not in ("image", "voice", "video", "file"):
        return _bad("invalid media type", 40004)
    if not body.get("multipart") or not body.get("has_media"):
        return _bad("media data missing", 41005)
    media_id = "tmp" + uuid.uuid4().hex
    fake.uploads.append(media_id)
    return _ok(type=query["type"], media_id=media_id, created_at=str(int(time.time())))


def _get_moment_task_result(fake: FakeWecom, query: dict[str, str], _body: dict[str, Any]) -> dict[str, Any]:
    job = fake.moment_jobs.get(query.get("jobid", ""))
    if job is None:
        return _bad("invalid jobid", 40058)
    job["polls"] += 1
    if job["polls"] == 1:  # the first answer: still running, as an async job may be
        return _ok(status=2, type="add_moment_task", result={})
    valid = [u for u in job["senders"] if u in fake.staff]
    invalid = [u for u in job["senders"] if u not in fake.staff]
    moment_id = job.setdefault("moment_id", "mom" + uuid.uuid4().hex)
    fake.moments.setdefault(moment_id, {"senders": valid, "published": set()})
    return _ok(
        status=3,
        type="add_moment_task",
        result={
            "errcode": 0,
            "errmsg": "ok",
            "moment_id": moment_id,
            "invalid_sender_list": {"user_list": invalid},
            "invalid_external_contact_list": {"tag_list": []},
        },
    )


def _get_moment_task(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    moment = fake.moments.get(body.get("moment_id", ""))
    if moment is None:
        return _bad("invalid moment_id", 40058)
    tasks = [{"userid": u, "publish_status": 1 if u in moment["published"] else 0} for u in moment["senders"]]
    return _ok(next_cursor="", task_list=tasks)


def _groupchat_list(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    limit = int(body.get("limit") or 0)
    if not 1 <= limit <= 1000:
        return _bad("limit must be 1..1000", 40058)
    ids = sorted(fake.group_chats)
    start = int(body.get("cursor") or 0)
    page = ids[start : start + limit]
    cursor = str(start + limit) if start + limit < len(ids) else ""
    return _ok(group_chat_list=[{"chat_id": c, "status": 0} for c in page], next_cursor=cursor)


def _groupchat_get(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    chat = fake.group_chats.get(body.get("chat_id", ""))
    if chat is None:
        return _bad("invalid chat_id", 40050)
    return _ok(group_chat={"chat_id": body["chat_id"], **chat})


def _externalcontact_get(fake: FakeWecom, query: dict[str, str], _b: dict[str, Any]) -> dict[str, Any]:
    contact = fake.contacts.get(query.get("external_userid", ""))
    if contact is None:
        return _bad("invalid external userid", 40096)
    follow = [
        {"userid": u, "createtime": 1_700_000_000}
        for u, e in sorted(fake.friends)
        if e == contact["external_userid"]
    ]
    return _ok(external_contact=contact, follow_user=follow, next_cursor="")


def _stat_range(
    fake: FakeWecom, body: dict[str, Any]
) -> tuple[list[date], list[str] | None] | dict[str, Any]:
    """The days and owners a statistics call asks for, or WeCom's refusal: timestamps are taken down to
    their day's midnight, the range is both ends inclusive, at most 30 days, from yesterday back to 180
    days (600018 otherwise); userid_list holds at most 100 owners."""
    try:
        begin_ts = int(body["day_begin_time"])
        end_ts = int(body.get("day_end_time") or begin_ts)
    except (KeyError, TypeError, ValueError):
        return _bad("day_begin_time required", 40058)
    begin = datetime.fromtimestamp(begin_ts, tz=STAT_ZONE).date()
    end = datetime.fromtimestamp(end_ts, tz=STAT_ZONE).date()
    yesterday = (fake.stat_today or datetime.now(STAT_ZONE).date()) - timedelta(days=1)
    if end < begin or end > yesterday or begin < yesterday - timedelta(days=179):
        return _bad("invalid start endtime", 600018)
    if (end - begin).days + 1 > 30:
        return _bad("invalid start endtime: the span is over 30 days", 600018)
    owners = (body.get("owner_filter") or {}).get("userid_list")
    if owners is not None and len(owners) > 100:
        return _bad("userid_list holds at most 100", 40058)
    return [begin + timedelta(days=i) for i in range((end - begin).days + 1)], owners


def _sum_stats(fake: FakeWecom, days: list[date], owners: set[str]) -> dict[str, int]:
    data = dict.fromkeys(STAT_FIGURES, 0)
    for (day, owner), figures in fake.group_stats.items():
        if day in days and owner in owners:
            for name in STAT_FIGURES:
                data[name] += figures.get(name, 0)
    return data


def _groupchat_statistic(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    asked = _stat_range(fake, body)
    if isinstance(asked, dict):
        return asked
    days, owners = asked
    known = sorted({owner for _day, owner in fake.group_stats})
    chosen = [o for o in known if owners is None or o in owners]
    if owners is None and len(chosen) > 1000:
        return _bad("too many owners: give owner_filter", 81017)
    limit = int(body.get("limit") or 500)
    offset = int(body.get("offset") or 0)
    if not 1 <= limit <= 1000 or offset < 0:
        return _bad("limit must be 1..1000", 40058)
    key = STAT_ORDER.get(int(body.get("order_by") or 1))
    if key is None:
        return _bad("invalid order_by", 40058)
    items = [{"owner": o, "data": _sum_stats(fake, days, {o})} for o in chosen]
    items.sort(key=lambda item: (item["data"][key], item["owner"]), reverse=not body.get("order_asc"))
    page = items[offset : offset + limit]
    return _ok(total=len(items), next_offset=min(offset + limit, len(items)), items=page)


def _groupchat_statistic_by_day(fake: FakeWecom, _q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    asked = _stat_range(fake, body)
    if isinstance(asked, dict):
        return asked
    days, owners = asked
    chosen = {o for _day, o in fake.group_stats if owners is None or o in owners}
    return _ok(
        items=[
            {
                "stat_time": int(datetime(d.year, d.month, d.day, tzinfo=STAT_ZONE).timestamp()),
                "data": _sum_stats(fake, [d], chosen),
            }
            for d in days
        ]
    )


ENDPOINTS = {
    ("POST", "/cgi-bin/externalcontact/add_msg_template"): _add_msg_template,
    ("POST", "/cgi-bin/externalcontact/get_groupmsg_task"): _get_groupmsg_task,
    ("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result"): _get_groupmsg_send_result,
    ("POST", "/cgi-bin/externalcontact/send_welcome_msg"): _send_welcome_msg,
    ("POST", "/cgi-bin/externalcontact/mark_tag"): _mark_tag,
    ("POST", "/cgi-bin/externalcontact/get_corp_tag_list"): _get_corp_tag_list,
    ("POST", "/cgi-bin/externalcontact/add_contact_way"): _add_contact_way,
    ("POST", "/cgi-bin/externalcontact/update_contact_way"): _update_contact_way,
    ("POST", "/cgi-bin/externalcontact/del_contact_way"): _del_contact_way,
    ("POST", "/cgi-bin/externalcontact/get_contact_way"): _get_contact_way,
    ("POST", "/cgi-bin/externalcontact/list_contact_way"): _list_contact_way,
    ("POST", "/cgi-bin/externalcontact/add_moment_task"): _add_moment_task,
    ("POST", "/cgi-bin/media/upload_attachment"): _upload_attachment,
    ("POST", "/cgi-bin/media/upload"): _upload_media,
    ("GET", "/cgi-bin/externalcontact/get_moment_task_result"): _get_moment_task_result,
    ("POST", "/cgi-bin/externalcontact/get_moment_task"): _get_moment_task,
    ("POST", "/cgi-bin/externalcontact/groupchat/list"): _groupchat_list,
    ("POST", "/cgi-bin/externalcontact/groupchat/get"): _groupchat_get,
    ("POST", "/cgi-bin/externalcontact/groupchat/statistic"): _groupchat_statistic,
    ("POST", "/cgi-bin/externalcontact/groupchat/statistic_group_by_day"): _groupchat_statistic_by_day,
    ("GET", "/cgi-bin/externalcontact/get"): _externalcontact_get,
}


def _handler(fake: FakeWecom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body: dict[str, Any] = {}
            if method == "POST":
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (self.headers.get("Content-Type") or "").startswith("multipart/form-data"):
                    # a media upload: what the endpoint checks is the part named "media" and its size
                    body = {
                        "multipart": True,
                        "has_media": b'name="media"' in raw,
                        "size": len(raw),
                        "raw": raw,
                    }
                    self._send(fake.handle(method, parts.path, query, body))
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                    answer = {"errcode": 47001, "errmsg": "data format error"}
                    self._send(answer)
                    return
            self._send(fake.handle(method, parts.path, query, body))

        def _send(self, answer: dict[str, Any]) -> None:
            data = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(200)  # WeCom answers errors in the errcode, with HTTP 200
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    # the default listen backlog (5) refuses connections when a test makes twenty calls at once
    request_queue_size = 128
    daemon_threads = True


@contextmanager
def running(fake: FakeWecom | None = None) -> Iterator[FakeWecom]:
    """The fake WeCom serving on a free local port (fake.url) until the block ends."""
    fake = fake or FakeWecom()
    server = _Server(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
