"""Referral verbs (裂变): campaigns with reward tiers, personal links and posters, invites through the
public landing with their anti-fraud verdicts and the review queue, rewards granted exactly once per
(campaign, inviter, tier), agents' commissions from the outbox, and the reports (progress, tree, KOC
board). Every write lands in the caller's transaction with its audit row and domain event."""

from siyu.referrals.service.agents import agent_report, get_agent, ledger_of, make_agent
from siyu.referrals.service.campaigns import (
    campaign_out,
    create_campaign,
    existing_link,
    get_campaign,
    inviter_first_name,
    inviter_name,
    is_running,
    landing_path,
    landing_url,
    link_by_token,
    link_for,
    link_for_by_actor,
    list_campaigns,
    poster_for,
    set_poster_image,
    tiers_of,
)
from siyu.referrals.service.events import process_all, process_events
from siyu.referrals.service.invites import (
    CampaignClosed,
    InviteResult,
    Reason,
    list_invites,
    record_invite,
    review,
    review_queue,
)
from siyu.referrals.service.reports import board, names, progress, tree
from siyu.referrals.service.rewards import GrantResult, grant_rewards, reward_key, rewards_of

__all__ = [
    "CampaignClosed",
    "GrantResult",
    "InviteResult",
    "Reason",
    "agent_report",
    "board",
    "campaign_out",
    "create_campaign",
    "existing_link",
    "get_agent",
    "get_campaign",
    "grant_rewards",
    "inviter_first_name",
    "inviter_name",
    "is_running",
    "landing_path",
    "landing_url",
    "ledger_of",
    "link_by_token",
    "link_for",
    "link_for_by_actor",
    "list_campaigns",
    "list_invites",
    "make_agent",
    "names",
    "poster_for",
    "process_all",
    "process_events",
    "progress",
    "record_invite",
    "review",
    "review_queue",
    "reward_key",
    "rewards_of",
    "set_poster_image",
    "tiers_of",
    "tree",
]
