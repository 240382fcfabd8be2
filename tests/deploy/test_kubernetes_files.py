"""The deployment files validate against the Kubernetes schemas, offline, and agree with picjobs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33"  # backoffLimitPerIndex and podFailurePolicy are GA from 1.33


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.name}:{doc['kind']}", doc))
    return found


DOCUMENTS = _documents()


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    job = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return job["template"]["spec"]  # type: ignore[no-any-return]


def test_every_kind_the_readme_promises_is_there() -> None:
    kinds = sorted(doc["kind"] for _, doc in DOCUMENTS)
    assert kinds == [
        "ConfigMap",
        "CronJob",
        "Job",
        "PersistentVolumeClaim",
        "Secret",
        "ServiceAccount",
    ]


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_each_file_validates_against_the_strict_kubernetes_schema(
    name: str, doc: dict[str, Any]
) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_typo() -> None:
    job = next(doc for _, doc in DOCUMENTS if doc["kind"] == "Job")
    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["completionsMode"] = broken["spec"].pop("completionMode")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kind", ["Job", "CronJob"])
def test_the_shard_count_in_args_matches_completions_and_parallelism(kind: str) -> None:
    doc = next(doc for _, doc in DOCUMENTS if doc["kind"] == kind)
    job = doc["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else doc["spec"]
    assert job["completionMode"] == "Indexed"
    args = " ".join(_pod_spec(doc)["containers"][0]["args"])
    match = re.search(r"--shard \$\(JOB_COMPLETION_INDEX\)/(\d+)", args)
    assert match is not None
    assert int(match.group(1)) == job["completions"] == job["parallelism"]


def test_the_cronjob_never_runs_two_nights_at_once() -> None:
    cron = next(doc for _, doc in DOCUMENTS if doc["kind"] == "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_pods_mount_the_manifest_the_args_name_and_the_ledger_volume() -> None:
    config = next(doc for _, doc in DOCUMENTS if doc["kind"] == "ConfigMap")
    claim = next(doc for _, doc in DOCUMENTS if doc["kind"] == "PersistentVolumeClaim")
    for kind in ("Job", "CronJob"):
        spec = _pod_spec(next(doc for _, doc in DOCUMENTS if doc["kind"] == kind))
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert volumes["manifest"]["configMap"]["name"] == config["metadata"]["name"]
        assert volumes["ledgers"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        manifest_arg = spec["containers"][0]["args"][-1]
        assert manifest_arg.startswith(mounts["manifest"] + "/")
        assert Path(manifest_arg).name in config["data"]


def test_the_configmaps_manifest_is_one_picjobs_loads(tmp_path: Path) -> None:
    from orchestrator.manifest import load_manifest

    config = next(doc for _, doc in DOCUMENTS if doc["kind"] == "ConfigMap")
    for name, text in config["data"].items():
        path = tmp_path / name
        path.write_text(text)
        manifest = load_manifest(path)
        assert str(manifest.ledger_path).startswith("/var/lib/picjobs/")
        assert manifest.limits.ledger_journal == "delete"  # the claim is ReadWriteMany (CFS)
