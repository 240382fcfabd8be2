"""[[job]] tables: several outputs per object, each job named, none writing over another."""

from __future__ import annotations

import pytest

from orchestrator.manifest import PriorityRule
from tests.manifest.support import BASE, error_of, load

HEAD = BASE[: BASE.index("[job]")]
THUMB = """
[[job]]
name = "thumb"
process_rule = "imageMogr2/thumbnail/320x/format/webp"
output = "thumbs/{dir}/{stem}.webp"
job_level = 1

[[job.priority]]
match = "vip/*"
job_level = 2
"""
MEDIUM = """
[[job]]
name = "medium"
template_id = "t1234567890abcdef"
output = "medium/{key}"
"""


def test_the_issue_s_two_jobs_load_with_their_own_keys_and_priorities() -> None:
    manifest = load(HEAD + THUMB + MEDIUM)
    thumb, medium = manifest.jobs
    assert manifest.job_names == ("thumb", "medium")
    assert (thumb.label, thumb.job_level, thumb.priority) == (
        "thumb",
        1,
        (PriorityRule("vip/*", 2),),
    )
    assert (medium.template_id, medium.process_rule, medium.priority) == (
        "t1234567890abcdef",
        None,
        (),
    )
    assert thumb.operation_fingerprint != medium.operation_fingerprint


def test_a_single_job_table_is_the_unnamed_default_job() -> None:
    (job,) = load(BASE).jobs
    assert (job.name, job.named, job.label) == ("default", False, None)


def test_a_single_job_may_be_named_and_keeps_its_operation() -> None:
    (job,) = load(BASE.replace("[job]\n", '[job]\nname = "thumb"\n')).jobs
    assert (job.name, job.label) == ("thumb", "thumb")
    assert job.operation_fingerprint == load(BASE).jobs[0].operation_fingerprint


def test_every_job_needs_a_name_when_there_are_several() -> None:
    assert error_of(HEAD + THUMB + MEDIUM.replace('name = "medium"\n', "")) == (
        "thumbs.toml:21: [job #2] missing required key 'name'"
    )


@pytest.mark.parametrize("name", ["", "a b", "thumb.webp", "é"])
def test_a_job_name_is_letters_digits_dashes_and_underscores(name: str) -> None:
    error = error_of(HEAD + THUMB + MEDIUM.replace('"medium"', f'"{name}"'))
    assert error.startswith("thumbs.toml:22: [job #2] name: ")


def test_two_jobs_may_not_share_a_name() -> None:
    assert error_of(HEAD + THUMB + MEDIUM.replace('"medium"', '"thumb"')) == (
        "thumbs.toml:22: [job #2] name: 'thumb' names another job too"
    )


def test_jobs_whose_outputs_can_meet_are_an_error_naming_both() -> None:
    same = MEDIUM.replace("medium/{key}", "thumbs/{dir}/{stem}.webp")
    assert error_of(HEAD + THUMB + same) == (
        "thumbs.toml:24: [job #2] output: jobs 'thumb' and 'medium' can write the same object"
        " (both write thumbs/p/q/r.webp for p/q/r.jpg in examplebucket-1250000000);"
        " give them different outputs or output buckets"
    )


def test_outputs_that_meet_only_for_some_extensions_are_caught_too() -> None:
    # A .webp input: the thumbnail's {stem}.webp is the other job's {name}.
    other = MEDIUM.replace("medium/{key}", "thumbs/{dir}/{name}")
    assert "for p/q/r.webp" in error_of(HEAD + THUMB + other)


def test_the_same_template_into_another_bucket_is_no_clash() -> None:
    other = MEDIUM.replace("medium/{key}", "thumbs/{dir}/{stem}.webp")
    other += 'output_bucket = "elsewhere-1250000000"\n'
    assert len(load(HEAD + THUMB + other).jobs) == 2


def test_a_priority_rule_error_names_the_line_inside_its_own_job() -> None:
    bad = MEDIUM + '\n[[job.priority]]\nmatch = "a/*"\njob_level = 5\n'
    assert error_of(HEAD + THUMB + bad) == (
        "thumbs.toml:28: [job.priority #1] job_level: must be 0, 1 or 2, got 5"
    )


def test_job_must_be_tables() -> None:
    assert error_of("job = 3\n" + HEAD).endswith(
        "job: must be a table [job] or tables [[job]], got integer 3"
    )


def test_the_job_of_a_manifest_is_its_only_job_and_an_error_with_several() -> None:
    assert load(BASE).job == load(BASE).jobs[0]
    with pytest.raises(ValueError, match="has 2 jobs"):
        _ = load(HEAD + THUMB + MEDIUM).job
