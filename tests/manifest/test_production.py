"""The manifest keys production runs need: credentials, endpoints, callbacks, the region's rate."""

from __future__ import annotations

import pytest

from tests.manifest.support import BASE, after, error_of, load


def test_credentials_default_to_auto_and_name_a_source_and_profile() -> None:
    assert load(BASE).target.credentials == "auto"
    target = load(after("region", 'credentials = "profile"', 'profile = "nightly"')).target
    assert (target.credentials, target.profile) == ("profile", "nightly")


def test_an_unknown_credentials_source_is_named() -> None:
    assert error_of(after("region", 'credentials = "vault"')) == (
        "thumbs.toml:6: [target] credentials: must be one of auto, env, profile, cvm-role,"
        " tke-oidc, got 'vault'"
    )


def test_service_endpoints_are_full_urls() -> None:
    target = load(
        after(
            "region",
            'ci_endpoint = "https://examplebucket-1250000000.ci.ap-chongqing.tencentci.cn"',
            'cos_endpoint = "https://examplebucket-1250000000.cos-internal.ap-chongqing.tencentcos.cn"',
        )
    ).target
    assert target.ci_endpoint == "https://examplebucket-1250000000.ci.ap-chongqing.tencentci.cn"
    assert error_of(after("region", 'cos_endpoint = "cos.internal"')) == (
        "thumbs.toml:6: [target] cos_endpoint: must be an http(s) URL, got 'cos.internal'"
    )


@pytest.mark.parametrize(
    ("region", "rate"),
    [("ap-chongqing", 100), ("ap-shanghai-fsi", 50), ("ap-singapore", 50), ("na-ashburn", 50)],
)
def test_the_default_rate_is_the_regions_quota(region: str, rate: float) -> None:
    assert load(BASE.replace("ap-chongqing", region)).limits.rate == rate


def test_a_rate_that_is_set_is_kept() -> None:
    assert (
        load(BASE.replace("ap-chongqing", "ap-singapore") + "[limits]\nrate = 20\n").limits.rate
        == 20
    )


def test_callback_no_turns_the_queue_callback_off() -> None:
    assert load(after("output", 'callback = "no"')).job.callback == "no"


def test_a_tdmq_callback_carries_its_queue() -> None:
    text = (
        after("output", 'callback_type = "TDMQ"')
        + '[job.callback_mq]\nregion = "gz"\nname = "jobs"\n'
    )
    job = load(text).job
    assert (job.callback_type, job.callback_mq) == ("TDMQ", ("gz", "Queue", "jobs"))


_TDMQ = after("output", 'callback_type = "TDMQ"')


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (BASE + '[job.callback_mq]\nregion = "gz"\nname = "jobs"\n', "[job.callback_mq] needs callback_type = 'TDMQ' in [job]"),
        (_TDMQ, "[job] callback_type 'TDMQ' needs a [job.callback_mq] table"),
        (_TDMQ + '[job.callback_mq]\nregion = "sz"\nname = "jobs"\n', "[job.callback_mq] region: must be one of sh, bj, gz, cd, hk, got 'sz'"),
        (_TDMQ + '[job.callback_mq]\nregion = "gz"\nmode = "Fanout"\nname = "j"\n', "[job.callback_mq] mode: must be 'Queue' or 'Topic', got 'Fanout'"),
        (_TDMQ + '[job.callback_mq]\nregion = "gz"\n', "[job.callback_mq] missing required key 'name'"),
    ],
)  # fmt: skip
def test_tdmq_settings_are_checked(text: str, fragment: str) -> None:
    message = error_of(text)
    assert message.startswith("thumbs.toml:")
    assert message.split(": ", 1)[1] == fragment
