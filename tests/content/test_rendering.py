"""The renderer: the sandbox refuses escapes, variables are strict, problems say where; SMS length rules."""

from __future__ import annotations

import pytest

from siyu.content.service.rendering import Links, RenderFailed, compile_content, sms_length

LINKS = Links(base_url="https://siyu.example.com")


def _render(
    text: str, context: dict[str, object] | None = None, snippets: dict[str, str] | None = None
) -> str:
    compiled = compile_content({"sms": {"text": text}}, snippets or {})
    assert not compiled.problems, compiled.problems
    return str(compiled.render("sms", context or {}, LINKS)["text"])


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ name.__class__.__init__.__globals__ }}",
        "{{ attributes.__class__ }}",
        "{{ (lipsum).__globals__ }}",
        "{{ 'x' * 100000000 }}",
        "{{ 2 ** 100000 }}",
        "{% for i in range(100000) %}{% endfor %}",
        "{{ '{0.__class__}'.format(name) }}",
    ],
)
def test_sandbox_refuses_escapes_with_a_position(escape: str) -> None:
    with pytest.raises(RenderFailed) as refused:
        _render("你好\n" + escape, {"name": "A", "attributes": {}})
    assert "sandbox" in refused.value.message or "unsafe" in refused.value.message
    assert refused.value.where == "sms.text, line 2, column 1"


def test_output_is_bounded_while_rendering() -> None:
    with pytest.raises(RenderFailed) as refused:
        _render("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}")
    assert "longer than 20000" in refused.value.message and refused.value.where == "sms.text"
    assert len(_render("{% for i in range(20) %}{{ 'x' * 1000 }}{% endfor %}")) == 20000


def test_strict_variables_fail_and_fallbacks_work() -> None:
    with pytest.raises(RenderFailed) as missing:
        _render("hi {{ name }}", {})
    assert "'name' is undefined" in missing.value.message
    assert missing.value.where == "sms.text, line 1, column 4"
    assert "default" in (missing.value.hint or "")
    assert _render('hi {{ name | default("朋友") }}', {}) == "hi 朋友"
    assert _render("{{ attributes.store }}", {"attributes": {"store": "静安店"}}) == "静安店"


def test_save_time_problems_list_syntax_errors_and_unknown_variables() -> None:
    compiled = compile_content(
        {"sms": {"text": "ok\n  {{ name "}, "email": {"subject": "{{ nmae }} {{ citty }}", "text": "x"}}, {}
    )
    by_where = {p.where: p for p in compiled.problems}
    syntax = by_where["sms.text"]
    assert syntax.message.startswith("syntax error") and syntax.line == 2 and syntax.column == 3
    unknown = by_where["email.subject"]
    assert unknown.message == "unknown variable(s): citty, nmae" and unknown.line == 1
    assert "email:text" not in str(compiled.problems) and "@email:text" in compiled.templates


def test_snippets_include_by_key_and_cycles_are_refused() -> None:
    assert _render('{% include "greet" %}!', {"name": "李"}, {"greet": "你好，{{ name }}"}) == "你好，李!"
    compiled = compile_content(
        {"sms": {"text": '{% include "a" %}'}}, {"a": '{% include "b" %}', "b": '{% include "a" %}'}
    )
    assert any("includes itself" in p.message for p in compiled.problems)
    unknown = compile_content({"sms": {"text": '{% include "nope" %}'}}, {})
    assert "no text snippet has the key 'nope'" in unknown.problems[0].message
    dynamic = compile_content({"sms": {"text": "{% include name %}"}}, {})
    assert "by its key in quotes" in dynamic.problems[0].message


def test_html_is_autoescaped_and_text_is_not() -> None:
    compiled = compile_content(
        {"email": {"subject": "{{ name }}", "text": "{{ name }}", "html": "<p>{{ name }}</p>"}}, {}
    )
    body = compiled.render("email", {"name": "<b>A&B</b>"}, LINKS)
    assert body == {
        "subject": "<b>A&B</b>",
        "text": "<b>A&B</b>",
        "html": "<p>&lt;b&gt;A&amp;B&lt;/b&gt;</p>",
    }


def test_links_are_tokens_per_url_and_only_http() -> None:
    links = Links(base_url="https://siyu.example.com/")
    compiled = compile_content(
        {
            "sms": {
                "text": '{{ link("https://shop.example.com/a?x=1") }} {{ link("https://shop.example.com/a?x=1") }} {{ link("https://b.example.com") }}'
            }
        },
        {},
    )
    text = compiled.render("sms", {}, links)["text"]
    first, again, other = text.split()
    assert first == again != other and first.startswith("https://siyu.example.com/s/")
    assert len(links.tokens) == 2 and all(len(t) == 22 for t in links.tokens.values())
    for bad in (
        "javascript:alert(1)",
        "//evil.example.com",
        "/relative",
        "https://",
        "https://a.example.com/ x",
    ):
        compiled = compile_content({"sms": {"text": "{{ link(u) }}".replace("u", repr(bad))}}, {})
        with pytest.raises(RenderFailed):
            compiled.render("sms", {}, Links(base_url="https://siyu.example.com"))


def test_sms_length_gsm7_single_and_long() -> None:
    assert sms_length("a" * 160).as_dict() == {"encoding": "gsm7", "length": 160, "parts": 1, "per_part": 160}
    assert sms_length("a" * 161).parts == 2 and sms_length("a" * 161).per_part == 153
    assert sms_length("a" * 306).parts == 2 and sms_length("a" * 307).parts == 3
    # extension characters take two septets
    assert sms_length("{" * 80).length == 160 and sms_length("{" * 81).parts == 2
    assert sms_length("").parts == 0


def test_sms_length_chinese_and_sign_name() -> None:
    assert sms_length("你" * 70).as_dict() == {"encoding": "ucs2", "length": 70, "parts": 1, "per_part": 70}
    assert (
        sms_length("你" * 71).parts == 2
        and sms_length("你" * 134).parts == 2
        and sms_length("你" * 135).parts == 3
    )
    # the sign name 【品牌】 counts: 4 characters, and makes even Latin text UCS-2
    assert sms_length("你" * 66, "品牌").length == 70 and sms_length("你" * 66, "品牌").parts == 1
    assert sms_length("你" * 67, "【品牌】").parts == 2
    assert sms_length("hello", "品牌").encoding == "ucs2"
    assert sms_length("【品牌】hello", "品牌").length == 9  # a text already signed is not signed twice
    assert sms_length("😀" * 35).length == 70  # an emoji is two UTF-16 units
