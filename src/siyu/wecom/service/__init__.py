"""WeCom verbs: settings and staff, the callback endpoint's work, friends and welcome messages, corp tags,
mass messages (群发), moments (朋友圈), contact ways (活码, live codes' own ways too) and customer
groups (客户群).

Verbs that call WeCom take an optional `client` (a `WecomClient`); without one they build the
workspace's own. They land their rows in the caller's transaction and never commit.
"""

from siyu.wecom.service.broadcasts import (
    MassMessageStatus,
    RecipientResult,
    TaskResults,
    get_mass_message,
    mass_message_results,
    poll_mass_message_results,
    send_mass_message,
)
from siyu.wecom.service.callbacks import CallbackResult, apply_message, receive, verify_url
from siyu.wecom.service.contact_ways import (
    create_contact_way,
    delete_contact_way,
    get_contact_way,
    list_contact_ways,
    update_contact_way,
)
from siyu.wecom.service.contacts import (
    WELCOME_WINDOW,
    Friend,
    deleted_staff_everywhere,
    friend_spans,
    friends,
    is_friend,
    mark_tag,
    relink_follows,
    send_welcome,
    senders,
    sync_corp_tags,
    wecom_tag_ids,
)
from siyu.wecom.service.groups import (
    get_group,
    group_members,
    list_groups,
    member_changes,
    store_group,
    sync_groups,
)
from siyu.wecom.service.live_code_ways import (
    PushedWay,
    configured_workspace_ids,
    find_way,
    push_way,
    wecom_userids,
)
from siyu.wecom.service.moments import (
    create_moment,
    get_moment,
    moment_staff,
    open_tasks,
    poll_moment_result,
    publish_due_moments,
)
from siyu.wecom.service.settings import (
    SettingsView,
    client_for,
    list_staff,
    map_staff,
    overview,
    save_settings,
    staff_user_ids,
    view_settings,
)

__all__ = [
    "WELCOME_WINDOW",
    "CallbackResult",
    "Friend",
    "MassMessageStatus",
    "PushedWay",
    "RecipientResult",
    "SettingsView",
    "TaskResults",
    "apply_message",
    "client_for",
    "configured_workspace_ids",
    "create_contact_way",
    "create_moment",
    "delete_contact_way",
    "deleted_staff_everywhere",
    "find_way",
    "friend_spans",
    "friends",
    "get_contact_way",
    "get_group",
    "get_mass_message",
    "get_moment",
    "group_members",
    "is_friend",
    "list_contact_ways",
    "list_groups",
    "list_staff",
    "map_staff",
    "mark_tag",
    "mass_message_results",
    "member_changes",
    "moment_staff",
    "open_tasks",
    "overview",
    "poll_mass_message_results",
    "poll_moment_result",
    "publish_due_moments",
    "push_way",
    "receive",
    "relink_follows",
    "save_settings",
    "send_mass_message",
    "send_welcome",
    "senders",
    "staff_user_ids",
    "store_group",
    "sync_corp_tags",
    "sync_groups",
    "update_contact_way",
    "verify_url",
    "view_settings",
    "wecom_tag_ids",
    "wecom_userids",
]
