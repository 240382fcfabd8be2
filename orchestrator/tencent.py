"""Facts about Tencent Cloud that more than one layer follows: the regions' request quotas, the
TDMQ regions and modes a callback may name, and the credential sources picjobs knows.

It imports nothing, so the manifest (which validates these words), the client (which acts on
them) and the engine and CLI can all refer to it without an upward import.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CREDENTIAL_CHOICES", "CREDENTIAL_SOURCES", "MQ_MODES", "MQ_REGIONS", "region_quota"]

# `[target] credentials`: one source, or "auto" to try them in this order.
CREDENTIAL_SOURCES: Final = ("env", "profile", "cvm-role", "tke-oidc")
CREDENTIAL_CHOICES: Final = ("auto", *CREDENTIAL_SOURCES)
MQ_REGIONS: Final = ("sh", "bj", "gz", "cd", "hk")
MQ_MODES: Final = ("Queue", "Topic")

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
