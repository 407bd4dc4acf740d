"""Rendering of message content: sandboxed Jinja2 with strict variables, snippets of the content library
included by key, tracked links (`{{ link("https://…") }}`), and the SMS length rules.

A template is compiled once per send and rendered per customer; a failure names the field and the line
in the template, so the author can fix it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from jinja2 import FunctionLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from siyu.core.errors import ValidationFailed

# the variables a template may use (service/contexts.py fills them per customer; `link` is per message)
VARIABLES: dict[str, str] = {
    "customer_id": "the customer's id",
    "name": "the customer's name",
    "city": "the customer's city",
    "gender": "male, female or unknown",
    "birthday": "the birthday, YYYY-MM-DD",
    "attributes": "the custom attributes, e.g. attributes.favourite_store",
    "tier": "the membership tier's name",
    "points": "the points balance",
    "coupons": "the usable coupons issued to the customer (code, template, expires_at), newest first",
    "coupon_code": "the code of the newest usable coupon",
    "owner_name": "the display name of the customer's owner (the staff member)",
    "link": 'a tracked short link: {{ link("https://…") }}',
}
MAX_OUTPUT = 20_000  # characters of one rendered field
MAX_RANGE = 1000  # items of range() in a template (Jinja's sandbox allows 100,000)
MAX_URL = 2000
_SLOT = re.compile(r"{[{%]")
SHORT_PATH = "/s/"


class RenderFailed(ValidationFailed):
    """A template could not be rendered for one customer (the message is suppressed, not the send)."""


@dataclass
class Problem:
    """One thing wrong with a template, where it is (field, line, column) and how to fix it."""

    message: str
    where: str
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    channel: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "where": self.where,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }


def _small_range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE} items is refused in templates")
    return found


class _Sandbox(SandboxedEnvironment):
    """The sandbox, also refusing arithmetic that would build huge values (`'x' * 10**9`) and long
    ranges; rendering stops as soon as a field's output passes `MAX_OUTPUT`."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _small_range

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("an exponent above 64 is refused in templates")
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                sized_ok = isinstance(sized, str | list | tuple) and isinstance(count, int)
                if sized_ok and len(sized) * count > MAX_OUTPUT:
                    raise SecurityError(f"a repetition longer than {MAX_OUTPUT} is refused in templates")
        return super().call_binop(context, operator, left, right)


class Links:
    """The tracked links of one message: one unguessable token per distinct URL. In preview mode the
    links are shown with a placeholder token and nothing is stored."""

    def __init__(self, *, base_url: str, preview: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.preview = preview
        self.tokens: dict[str, str] = {}

    def __call__(self, url: Any) -> str:
        target = check_url(url)
        token = self.tokens.get(target)
        if token is None:
            token = "preview" if self.preview else new_token()
            self.tokens[target] = token
        return f"{self.base_url}{SHORT_PATH}{token}"


def new_token() -> str:
    return secrets.token_urlsafe(16)  # 128 bits, 22 characters


def check_url(url: Any) -> str:
    """An absolute http(s) URL, as given; anything else is refused (no javascript:, no relative links)."""
    if not isinstance(url, str):
        raise SecurityError('link() takes a URL in quotes, e.g. link("https://shop.example.com/")')
    text = url.strip()
    if len(text) > MAX_URL or any(ord(c) < 33 or c in "\x7f" for c in text):
        raise SecurityError(f"link() takes an http(s) URL without spaces, at most {MAX_URL} characters")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SecurityError(f"link() takes an absolute http or https URL, not {text[:80]!r}")
    return text


def _fields(body: Any, prefix: str) -> Iterator[tuple[str, str]]:
    """Every string of a channel's content, by its path (`text`, `attachments[0].link.title`)."""
    if isinstance(body, str):
        yield prefix, body
    elif isinstance(body, Mapping):
        for name, value in body.items():
            yield from _fields(value, f"{prefix}.{name}" if prefix else str(name))
    elif isinstance(body, list | tuple):
        for index, value in enumerate(body):
            yield from _fields(value, f"{prefix}[{index}]")


def _rebuild(body: Any, prefix: str, rendered: Mapping[str, str]) -> Any:
    if isinstance(body, str):
        return rendered[prefix]
    if isinstance(body, Mapping):
        return {k: _rebuild(v, f"{prefix}.{k}" if prefix else str(k), rendered) for k, v in body.items()}
    if isinstance(body, list | tuple):
        return [_rebuild(v, f"{prefix}[{i}]", rendered) for i, v in enumerate(body)]
    return body


def _column(source: str, line: int | None) -> int | None:
    """Where on the line the error is: Jinja gives only the line, so point at its first tag or
    expression (1-based), which is where an author looks."""
    if line is None:
        return None
    lines = source.splitlines()
    if not 0 < line <= len(lines):
        return None
    found = _SLOT.search(lines[line - 1])
    return found.start() + 1 if found else 1


def _position(error: BaseException, names: set[str]) -> tuple[str | None, int | None]:
    """The template and line a runtime error happened at, read from Jinja's rewritten traceback."""
    name, line = None, None
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in names:
            name, line = filename, tb.tb_lineno
        tb = tb.tb_next
    return name, line


def _field_name(template_name: str) -> str:
    """`@sms:text` → `sms.text`; a snippet's name → `snippet welcome`."""
    return (
        template_name[1:].replace(":", ".", 1)
        if template_name.startswith("@")
        else f"snippet {template_name}"
    )


@dataclass
class Compiled:
    """A content dict compiled for rendering: per channel, its fields' templates."""

    bodies: dict[str, Any]
    templates: dict[str, Template]  # "@channel:field" → template
    sources: dict[str, str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def static(self) -> bool:
        """No field uses a variable, a link or a snippet (every template construct starts with "{"), so
        every customer gets the same rendering of a channel and no context is needed."""
        return not any("{" in source for source in self.sources.values())

    def render(self, channel: str, context: Mapping[str, Any], links: Callable[[Any], str]) -> dict[str, Any]:
        """The channel's content rendered for one customer; `RenderFailed` names field and line."""
        body = self.bodies.get(channel, self.bodies.get("default"))
        key = channel if channel in self.bodies else "default"
        if body is None:
            raise RenderFailed(f"no content for channel {channel!r}", where=f"content.{channel}")
        values = {**context, "link": links}
        rendered: dict[str, str] = {}
        for path, _ in _fields(body, ""):
            name = f"@{key}:{path}"
            try:
                text = _bounded(self.templates[name], values)
            except TemplateError as error:
                where_name, line = _position(error, set(self.sources))
                where_name = where_name or name
                raise RenderFailed(
                    _runtime_message(error),
                    where=_where(where_name, line, _column(self.sources.get(where_name, ""), line)),
                    hint=_runtime_hint(error),
                ) from None
            except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as error:
                where_name, line = _position(error, set(self.sources))
                raise RenderFailed(
                    f"{type(error).__name__}: {error}"[:300],
                    where=_where(where_name or name, line, None),
                ) from None
            if len(text) > MAX_OUTPUT:
                raise RenderFailed(
                    f"the rendered text is longer than {MAX_OUTPUT} characters",
                    where=_where(name, None, None),
                )
            rendered[path] = text
        return dict(_rebuild(body, "", rendered))


def _bounded(template: Template, values: Mapping[str, Any]) -> str:
    """Render, stopping once the output is longer than `MAX_OUTPUT` (a loop cannot fill memory)."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(values):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise SecurityError(f"the rendered text is longer than {MAX_OUTPUT} characters")
        parts.append(chunk)
    return "".join(parts)


def _where(name: str, line: int | None, column: int | None) -> str:
    where = _field_name(name)
    if line is not None:
        where += f", line {line}"
        if column is not None:
            where += f", column {column}"
    return where


def _runtime_message(error: TemplateError) -> str:
    if isinstance(error, SecurityError):
        return f"refused by the sandbox: {error}"
    if isinstance(error, UndefinedError):
        return f"{error} for this customer"
    return str(error)[:300]


def _runtime_hint(error: TemplateError) -> str | None:
    if isinstance(error, SecurityError):
        return "templates may use the customer variables, filters and link(); nothing of Python's internals"
    if isinstance(error, UndefinedError):
        return 'give a fallback for customers without it, e.g. {{ name | default("朋友") }}'
    return None


def compile_content(content: Mapping[str, Any], snippets: Mapping[str, str]) -> Compiled:
    """Compile every string of every channel's content. Problems (syntax errors with line and column,
    unknown variables, unknown or non-literal snippet includes) are collected in `problems`; the
    fields that have none are compiled."""
    sources: dict[str, str] = {}
    html_names: set[str] = set()
    for channel, body in content.items():
        for path, text in _fields(body, ""):
            name = f"@{channel}:{path}"
            sources[name] = text
            if path == "html" or path.endswith(".html"):
                html_names.add(name)
    for key, text in snippets.items():
        sources[key] = text

    def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        return (sources[name], name, lambda: True) if name in sources else None

    # two sandboxes: html fields autoescape, and so do the snippets they include
    plain = _Sandbox(undefined=StrictUndefined, loader=FunctionLoader(load), autoescape=False)
    escaped = _Sandbox(undefined=StrictUndefined, loader=FunctionLoader(load), autoescape=True)
    known = set(VARIABLES) | set(plain.globals)
    compiled = Compiled(bodies=dict(content), templates={}, sources=sources)
    for name in (n for n in sources if n.startswith("@")):
        env = escaped if name in html_names else plain
        problems = _check(env, name, sources, snippets, known)
        for problem in problems:
            problem.channel = name[1:].split(":", 1)[0]
        if problems:
            compiled.problems.extend(problems)
            continue
        compiled.templates[name] = env.get_template(name)
    return compiled


def _check(
    env: SandboxedEnvironment,
    name: str,
    sources: Mapping[str, str],
    snippets: Mapping[str, str],
    known: set[str],
    seen: tuple[str, ...] = (),
) -> list[Problem]:
    """Problems of one template and the snippets it includes (recursively, refusing cycles)."""
    source = sources[name]
    try:
        tree = env.parse(source, name=name, filename=name)
    except TemplateSyntaxError as error:
        return [
            Problem(
                f"syntax error: {error.message}",
                where=_field_name(name),
                line=error.lineno,
                column=_column(source, error.lineno),
                hint="check the {{ … }} and {% … %} on that line are closed and spelled right",
            )
        ]
    problems: list[Problem] = []
    unknown = sorted(meta.find_undeclared_variables(tree) - known)
    if unknown:
        line = _first_line(tree, set(unknown))
        problems.append(
            Problem(
                f"unknown variable(s): {', '.join(unknown)}",
                where=_field_name(name),
                line=line,
                column=_column(source, line),
                hint="known: " + ", ".join(VARIABLES),
            )
        )
    for included in meta.find_referenced_templates(tree):
        if included is None:
            problems.append(
                Problem(
                    "a snippet must be included by its key in quotes",
                    where=_field_name(name),
                    hint='e.g. {% include "welcome" %}',
                )
            )
        elif included not in snippets:
            problems.append(
                Problem(
                    f"no text snippet has the key {included!r}",
                    where=_field_name(name),
                    hint="see the content library (话术库) for the keys of text snippets",
                )
            )
        elif included in seen or included == name:
            problems.append(
                Problem(
                    f"snippet {included!r} includes itself", where=_field_name(name), hint="remove the cycle"
                )
            )
        else:
            problems.extend(_check(env, included, sources, snippets, known, (*seen, name)))
    return problems


def _first_line(tree: nodes.Template, names: set[str]) -> int | None:
    lines = [n.lineno for n in tree.find_all(nodes.Name) if n.name in names and n.ctx == "load"]
    return min(lines) if lines else None


def includes(content: Mapping[str, Any]) -> set[str]:
    """Keys a content dict may include (literal names found by a quick scan; resolved by the caller)."""
    found: set[str] = set()
    for _channel, body in content.items():
        for _path, text in _fields(body, ""):
            found.update(re.findall(r"""{%-?\s*(?:include|import|from|extends)\s+["']([^"']+)["']""", text))
    return found


# --- SMS length ------------------------------------------------------------------------------------------

# GSM 03.38 default alphabet, and the extension table (each of those takes two septets)
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    """How an SMS counts: its encoding, its length in that encoding's units, and the parts it is sent in."""

    encoding: str  # "gsm7" or "ucs2"
    length: int
    parts: int
    per_part: int  # the limit of one part as sent (160/70 for one part, 153/67 per part of a long SMS)

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "length": self.length,
            "parts": self.parts,
            "per_part": self.per_part,
        }


def sms_text(text: str, sign_name: str | None) -> str:
    """The text as the phone receives it: the sign name 【…】 first (unless the text starts with it)."""
    sign = (sign_name or "").strip().strip("【】")
    if not sign:
        return text
    signed = f"【{sign}】"
    return text if text.startswith(signed) else signed + text


def sms_length(text: str, sign_name: str | None = None) -> SmsLength:
    """The length and parts count of an SMS: GSM-7 text is 160 septets in one part, 153 per part of a
    long SMS (extension characters take two); any other character (Chinese, 【】, emoji) makes the whole
    message UCS-2: 70 characters in one part, 67 per part (UTF-16 units: an emoji counts two)."""
    full = sms_text(text, sign_name)
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in full):
        length = sum(2 if c in _GSM_EXTENDED else 1 for c in full)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        length = len(full.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "ucs2"
    if length <= single:
        return SmsLength(encoding, length, 1 if length else 0, single)
    return SmsLength(encoding, length, -(-length // multi), multi)
