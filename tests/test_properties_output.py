"""Properties of output templating: what `[job] output` accepts and what it renders for a key."""

from __future__ import annotations

import hashlib
import json
import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.manifest import OUTPUT_PLACEHOLDERS, output_template_problem
from orchestrator.plan import item_id, key_parts, render_output

# Enough examples to find the edges, few enough to keep the suite fast.
moderate = settings(max_examples=30, deadline=None)

keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
# Literal text of a template: anything, its braces doubled as str.format wants.
literals = st.text(st.characters(codec="utf-8"), max_size=12).map(
    lambda text: text.replace("{", "{{").replace("}", "}}")
)
placeholders = st.sampled_from(OUTPUT_PLACEHOLDERS).map(lambda name: "{" + name + "}")
templates = st.lists(literals | placeholders, min_size=1, max_size=6).map("".join)
unknown_names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12).filter(
    lambda name: name not in OUTPUT_PLACEHOLDERS and not name.isdigit()
)


@moderate
@given(templates)
def test_a_template_of_literal_text_and_known_placeholders_is_accepted(template: str) -> None:
    assume(not template.startswith("/"))
    assert output_template_problem(template) is None


@moderate
@given(templates, unknown_names, templates)
def test_a_template_with_an_unknown_placeholder_is_refused_naming_it(
    before: str, name: str, after: str
) -> None:
    template = before + "{" + name + "}" + after
    problem = output_template_problem(template)
    assert problem is not None
    # The first unknown name is the one reported; ours is the only one.
    assert problem.startswith(f"unknown placeholder {{{name}}} in ")


@moderate
@given(templates.filter(lambda template: "/" not in template))
def test_a_template_starting_with_a_slash_is_refused(template: str) -> None:
    assert output_template_problem("/" + template) is not None


@moderate
@given(keys)
def test_the_parts_of_a_key_put_it_back_together(key: str) -> None:
    parts = key_parts(key)
    assert parts["key"] == key
    assert "/" not in parts["name"]
    assert (parts["dir"] + "/" + parts["name"] if "/" in key else parts["name"]) == key
    assert parts["name"] == parts["stem"] + ("." + parts["ext"] if parts["ext"] else "") or (
        parts["name"].endswith(".") and parts["ext"] == ""
    )
    assert "." not in parts["ext"]


@moderate
@given(keys)
def test_key_and_dir_slash_name_both_render_the_key_itself(key: str) -> None:
    assume(not key.startswith("/"))  # the planner strips it first: COS keys never start so
    assert render_output("{key}", key) == key
    # With no directory, the '/' after {dir} goes too: `a.jpg`, not `/a.jpg`.
    assert render_output("{dir}/{name}", key) == key


@moderate
@given(templates, keys)
def test_rendering_fills_every_placeholder_like_str_format(template: str, key: str) -> None:
    parts = key_parts(key)
    rendered = render_output(template, key)
    if parts["dir"] or "{dir}/" not in template:
        assert rendered == template.format(**parts)
    else:
        assert rendered == template.replace("{dir}/", "{dir}").format(**parts)


@moderate
@given(literals.filter(lambda text: "{" not in text and "}" not in text), keys)
def test_a_template_without_placeholders_renders_the_same_for_every_key(
    template: str, key: str
) -> None:
    assert render_output(template, key) == template


@given(st.lists(st.text(), min_size=6, max_size=6))
def test_item_ids_hash_exactly_the_json_array_of_their_fields(fields: list[str]) -> None:
    encoded = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    assert item_id(*fields) == hashlib.sha256(encoded).hexdigest()[:32]
