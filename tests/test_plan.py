"""Planning: output-key templates, item identity and JobLevel precedence."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.exceptions import ManifestError
from orchestrator.items import Item, ObjectRef
from orchestrator.manifest import JobConfig, Manifest, PriorityRule, SourceConfig, Target
from orchestrator.plan import Planner, item_id, key_parts, render_output

BUCKET = "examplebucket-1250000000"
OUT_BUCKET = "outbucket-1250000000"


def manifest(**job: object) -> Manifest:
    settings: dict[str, object] = {
        "template_id": None,
        "process_rule": "imageMogr2/thumbnail/400x/format/webp",
        "is_pic_info": False,
        "output": "thumbs/{dir}/{stem}.webp",
        "output_bucket": OUT_BUCKET,
        "output_region": "ap-beijing",
    }
    settings.update(job)
    return Manifest(
        name="thumbs-nightly",
        path=Path("/srv/thumbs.toml"),
        ledger_path=Path("/srv/.picjobs/thumbs-nightly.sqlite"),
        target=Target(BUCKET, "ap-chongqing"),
        source=SourceConfig(kind="prefix", prefix=""),
        jobs=(JobConfig(**settings),),  # type: ignore[arg-type]
    )


# render_output


@pytest.mark.parametrize(
    ("template", "key", "expected"),
    [
        ("thumbs/{dir}/{stem}.webp", "photos/a/b.jpg", "thumbs/photos/a/b.webp"),
        ("{key}", "photos/a/b.jpg", "photos/a/b.jpg"),
        ("{dir}|{name}|{stem}|{ext}", "photos/a/b.jpg", "photos/a|b.jpg|b|jpg"),
        # A root-level key has no directory: the '/' after {dir} goes with it.
        ("thumbs/{dir}/{stem}.webp", "x.jpg", "thumbs/x.webp"),
        ("{dir}/{name}", "x.jpg", "x.jpg"),
        ("{dir}/{dir}/{name}", "x.jpg", "x.jpg"),
        ("{dir}-{name}", "x.jpg", "-x.jpg"),
        ("{dir}{name}", "x.jpg", "x.jpg"),
        # No extension.
        ("{stem}|{ext}", "photos/README", "README|"),
        ("out/{dir}/{stem}.webp", "photos/README", "out/photos/README.webp"),
        # A dotfile is all stem.
        ("{stem}|{ext}", "photos/.hidden", ".hidden|"),
        ("{stem}|{ext}", ".hidden", ".hidden|"),
        ("{stem}|{ext}", "a/.hidden.jpg", ".hidden|jpg"),
        # Only the last suffix is the extension, kept as written.
        ("{stem}|{ext}", "a/b.tar.GZ", "b.tar|GZ"),
        ("{stem}|{ext}", "a/b.", "b|"),
        # A directory key has an empty name.
        ("{dir}|{name}|{stem}", "a/b/", "a/b||"),
        ("thumbs/{dir}/{stem}.webp", "相册/猫 咪.JPG", "thumbs/相册/猫 咪.webp"),
        ("{{v1}}/{key}", "a.jpg", "{v1}/a.jpg"),
        ("static/name.webp", "a/b.jpg", "static/name.webp"),
    ],
)
def test_render_output_fills_the_placeholders(template: str, key: str, expected: str) -> None:
    assert render_output(template, key) == expected


def test_key_parts_splits_a_key_into_the_placeholder_values() -> None:
    assert key_parts("photos/2024/cat.v2.jpg") == {
        "key": "photos/2024/cat.v2.jpg",
        "dir": "photos/2024",
        "name": "cat.v2.jpg",
        "stem": "cat.v2",
        "ext": "jpg",
    }


segments = st.text(st.characters(codec="utf-8"), min_size=1)
# A non-empty first segment before the last '/' means the key always has a directory.
keys_with_a_directory = st.builds("/".join, st.lists(segments, min_size=2))


@given(keys_with_a_directory)
def test_dir_and_name_put_back_together_give_the_key(key: str) -> None:
    assert render_output("{dir}/{name}", key) == key


# item_id

FINGERPRINT = "1a1e01cdddd835a3"
FIELDS = ("thumbs-nightly", BUCKET, "photos/a/b.jpg", OUT_BUCKET, "thumbs/photos/a/b.webp")


def test_item_id_is_stable_across_runs_and_versions() -> None:
    # Ledgers written by earlier versions hold this id: it must never change.
    assert item_id(*FIELDS, FINGERPRINT) == "fcee8a337aea886874ba7dae725dbed1"


def test_item_id_is_32_hex_digits_of_sha256_over_a_json_array() -> None:
    encoded = json.dumps([*FIELDS, FINGERPRINT], ensure_ascii=False, separators=(",", ":"))
    assert item_id(*FIELDS, FINGERPRINT) == hashlib.sha256(encoded.encode()).hexdigest()[:32]


@pytest.mark.parametrize("position", range(6))
def test_item_id_changes_when_any_field_changes(position: int) -> None:
    fields = [*FIELDS, FINGERPRINT]
    changed = list(fields)
    changed[position] += "x"
    assert item_id(*changed) != item_id(*fields)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("a", "bc", "k", "o", "ok", "f"), ("ab", "c", "k", "o", "ok", "f")),
        (("m", "b", "k,o", "o", "ok", "f"), ("m", "b", "k", "o,o", "ok", "f")),
        (("m", "b", 'k","o', "o", "ok", "f"), ("m", "b", "k", "o", "o", "ok")),
    ],
)
def test_item_id_keeps_neighbouring_fields_apart(
    one: tuple[str, ...], other: tuple[str, ...]
) -> None:
    assert item_id(*one) != item_id(*other)


def test_item_id_handles_unicode_keys() -> None:
    assert item_id("m", "b", "相册/猫.jpg", "o", "缩略图/猫.webp", "f") != item_id(
        "m", "b", "相册/狗.jpg", "o", "缩略图/猫.webp", "f"
    )


# Planner


def test_plan_renders_the_output_and_carries_the_object_metadata_over() -> None:
    ref = ObjectRef(
        bucket=BUCKET,
        key="photos/a/b.jpg",
        size=1234,
        etag='"9a0364b9e99bb480dd25e1f0284c8555"',
        last_modified="2024-05-01T10:00:00Z",
        line=7,
    )
    planned = manifest()
    assert Planner(planned).plan(ref) == Item(
        item_id=item_id(
            "thumbs-nightly",
            BUCKET,
            "photos/a/b.jpg",
            OUT_BUCKET,
            "thumbs/photos/a/b.webp",
            planned.jobs[0].operation_fingerprint,
        ),
        bucket=BUCKET,
        key="photos/a/b.jpg",
        output_bucket=OUT_BUCKET,
        output_region="ap-beijing",
        output_key="thumbs/photos/a/b.webp",
        job_level=0,
        user_data=None,
        etag='"9a0364b9e99bb480dd25e1f0284c8555"',
        size=1234,
        last_modified="2024-05-01T10:00:00Z",
    )


def test_a_row_output_key_wins_over_the_template() -> None:
    item = Planner(manifest()).plan(ObjectRef(BUCKET, "a/b.jpg", output_key="custom/out.png"))
    assert item.output_key == "custom/out.png"


def test_a_row_bucket_other_than_the_target_is_kept_as_the_input_bucket() -> None:
    item = Planner(manifest()).plan(ObjectRef("other-1250000000", "a/b.jpg"))
    assert (item.bucket, item.output_bucket) == ("other-1250000000", OUT_BUCKET)


def test_an_empty_output_key_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError) as caught:
        Planner(manifest(output="{ext}")).plan(ObjectRef(BUCKET, "photos/README"))
    assert str(caught.value) == (
        "/srv/thumbs.toml: [job] output: '{ext}' gives an empty object key for 'photos/README'"
    )


RULES = (PriorityRule("vip/*", 2), PriorityRule("*.png", 0), PriorityRule("vip/*.png", 1))


@pytest.mark.parametrize(
    ("ref", "level"),
    [
        # The row's own level beats every rule and the default.
        (ObjectRef(BUCKET, "vip/a.png", job_level=0), 0),
        (ObjectRef(BUCKET, "plain.jpg", job_level=2), 2),
        # Then the first matching rule, even when a later one matches too.
        (ObjectRef(BUCKET, "vip/a.png"), 2),
        (ObjectRef(BUCKET, "x/a.png"), 0),
        # '*' crosses '/' and matching is case-sensitive.
        (ObjectRef(BUCKET, "x/y/z.png"), 0),
        (ObjectRef(BUCKET, "x/A.PNG"), 1),
        # Then the manifest's default.
        (ObjectRef(BUCKET, "VIP/a.jpg"), 1),
    ],
)
def test_job_level_comes_from_the_row_then_the_first_matching_rule_then_the_default(
    ref: ObjectRef, level: int
) -> None:
    planner = Planner(manifest(job_level=1, priority=RULES))
    assert planner.plan(ref).job_level == level


def test_user_data_of_the_row_wins_over_the_manifest() -> None:
    planner = Planner(manifest(user_data="from manifest"))
    assert planner.plan(ObjectRef(BUCKET, "a.jpg", user_data="from row")).user_data == "from row"
    assert planner.plan(ObjectRef(BUCKET, "a.jpg")).user_data == "from manifest"


def test_the_same_object_planned_twice_gets_the_same_item_id() -> None:
    ref = ObjectRef(BUCKET, "a/b.jpg")
    assert Planner(manifest()).plan(ref).item_id == Planner(manifest()).plan(ref).item_id


@pytest.mark.parametrize(
    "change",
    [
        {"output": "small/{dir}/{stem}.webp"},
        {"output_bucket": "elsewhere-1250000000"},
        {"process_rule": "imageMogr2/thumbnail/200x/format/webp"},
        {"process_rule": None, "template_id": "t1"},
        {"is_pic_info": True},
    ],
)
def test_the_item_id_changes_when_the_output_or_operation_changes(
    change: dict[str, object],
) -> None:
    ref = ObjectRef(BUCKET, "a/b.jpg")
    assert Planner(manifest(**change)).plan(ref).item_id != Planner(manifest()).plan(ref).item_id


def test_the_item_id_ignores_priority_user_data_and_metadata() -> None:
    ref = ObjectRef(BUCKET, "a/b.jpg")
    other = ref._replace(size=5, etag='"e"', job_level=2, user_data="u")
    changed = manifest(job_level=2, user_data="x", output_region="ap-shanghai")
    assert Planner(changed).plan(other).item_id == Planner(manifest()).plan(ref).item_id


@given(
    st.text(min_size=1, max_size=20).filter(lambda key: key.lstrip("/")),
    st.sampled_from(["out/{key}", "{key}", 'a"{key}\\b', "{dir}/{stem}.webp"]),
)
def test_a_planned_item_id_is_item_id_of_its_own_fields(key: str, output: str) -> None:
    m = manifest(output=output)
    planned = Planner(m).plan(ObjectRef(bucket="src-1250000000", key=key))
    expected = item_id(
        m.name, planned.bucket, planned.key, planned.output_bucket, planned.output_key,
        m.jobs[0].operation_fingerprint,
    )  # fmt: skip
    assert planned.item_id == expected
    assert planned.output_key == render_output(output, planned.key)
