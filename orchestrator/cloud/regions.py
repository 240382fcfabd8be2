"""Facts about Tencent Cloud regions that picjobs' defaults follow."""

from __future__ import annotations

__all__ = ["CREDENTIAL_CHOICES", "MQ_MODES", "MQ_REGIONS", "region_quota"]

CREDENTIAL_CHOICES = ("auto", "env", "profile", "cvm-role", "tke-oidc")
MQ_REGIONS = ("sh", "bj", "gz", "cd", "hk")
MQ_MODES = ("Queue", "Topic")

# Mainland-China public regions; finance (`-fsi`) and overseas regions get the lower quota.
_MAINLAND = frozenset(
    {
        "ap-beijing",
        "ap-beijing-1",
        "ap-nanjing",
        "ap-shanghai",
        "ap-guangzhou",
        "ap-chengdu",
        "ap-chongqing",
        "ap-shenzhen",
        "ap-qingyuan",
    }
)


def region_quota(region: str) -> float:
    """CI's documented async-processing quota in requests/s: 100 in mainland-China public
    regions, 50 in finance and overseas regions (ci-api.md, "使用限制")."""
    return 100.0 if region in _MAINLAND else 50.0
