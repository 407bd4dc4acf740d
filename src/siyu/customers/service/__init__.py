"""Customer verbs: search and list, the 360 view, and single-customer writes (profile, owner, consent).

Every read goes through `visible_customers(actor)`: one workspace, never merged or erased records, and
for staff only the customers they own. Phones are masked for roles that may not see them whole.
"""

from siyu.customers.service.contact import (
    ContactFacts,
    Profile,
    contact_facts,
    customer_id_by_identity,
    names_of,
    profiles,
)
from siyu.customers.service.paging import (
    MAX_LIMIT,
    clamp_limit,
    decode_cursor,
    decode_time_id_cursor,
    encode_cursor,
    keyset_before,
)
from siyu.customers.service.profile import (
    consents_in_force,
    customer_timeline,
    get_customer_360,
    list_identities,
)
from siyu.customers.service.search import (
    EXPORT_MAX_ROWS,
    count_customers,
    ensure_assigned,
    ensure_visible,
    export_customer_list,
    get_customer_summary,
    get_visible_customer,
    lookup_by_identity,
    search_customers,
    visible_customers,
)
from siyu.customers.service.selection import (
    BUILTIN_IDENTITY_KINDS,
    CONSENT_PURPOSES,
    CONTACT_CHANNELS,
    GENDERS,
    RULE_COLUMNS,
    RuleColumns,
    customer_ids_by_identity,
    customer_ids_with_consent,
    customer_ids_with_identity,
    customer_summaries,
    identity_kinds_in_use,
    live_customer_ids,
    unsubscribed_everywhere,
    visible_customer_ids,
)
from siyu.customers.service.writes import assign_owner, record_consent, record_system_consent, update_profile

__all__ = [
    "BUILTIN_IDENTITY_KINDS",
    "CONSENT_PURPOSES",
    "CONTACT_CHANNELS",
    "EXPORT_MAX_ROWS",
    "GENDERS",
    "MAX_LIMIT",
    "RULE_COLUMNS",
    "ContactFacts",
    "Profile",
    "RuleColumns",
    "assign_owner",
    "clamp_limit",
    "consents_in_force",
    "contact_facts",
    "count_customers",
    "customer_id_by_identity",
    "customer_ids_by_identity",
    "customer_ids_with_consent",
    "customer_ids_with_identity",
    "customer_summaries",
    "customer_timeline",
    "decode_cursor",
    "decode_time_id_cursor",
    "encode_cursor",
    "ensure_assigned",
    "ensure_visible",
    "export_customer_list",
    "get_customer_360",
    "get_customer_summary",
    "get_visible_customer",
    "identity_kinds_in_use",
    "keyset_before",
    "list_identities",
    "live_customer_ids",
    "lookup_by_identity",
    "names_of",
    "profiles",
    "record_consent",
    "record_system_consent",
    "search_customers",
    "unsubscribed_everywhere",
    "update_profile",
    "visible_customer_ids",
    "visible_customers",
]
