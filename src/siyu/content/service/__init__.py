"""Content verbs: message templates (checked when saved, compiled for a send, previewed for a customer),
the content library (话术库), the template variables of customers, and tracked short links."""

from siyu.content.service.contexts import render_contexts
from siyu.content.service.library import (
    copy_snippet,
    create_snippet,
    get_snippet,
    groups,
    list_snippets,
    update_snippet,
)
from siyu.content.service.links import CLICKED, LinkRow, clicks, follow, store_links
from siyu.content.service.rendering import (
    VARIABLES,
    Compiled,
    Links,
    Problem,
    RenderFailed,
    SmsLength,
    check_url,
    sms_length,
    sms_text,
)
from siyu.content.service.templates import (
    check_variants,
    compile_for_send,
    create_template,
    get_template,
    list_templates,
    preview,
    short_link_base,
    update_template,
)

__all__ = [
    "CLICKED",
    "VARIABLES",
    "Compiled",
    "LinkRow",
    "Links",
    "Problem",
    "RenderFailed",
    "SmsLength",
    "check_url",
    "check_variants",
    "clicks",
    "compile_for_send",
    "copy_snippet",
    "create_snippet",
    "create_template",
    "follow",
    "get_snippet",
    "get_template",
    "groups",
    "list_snippets",
    "list_templates",
    "preview",
    "render_contexts",
    "short_link_base",
    "sms_length",
    "sms_text",
    "store_links",
    "update_snippet",
    "update_template",
]
