"""The manifest: frozen dataclasses, loaded from TOML, validated with one-line located errors.

model: the dataclasses; reading: bytes to TOML and where keys are written; tables: typed
getters with located errors; validation: the schema; values: single-value checks shared with
the CSV source and the planner; jobs: checks between the jobs of one manifest; notify: the
[notify] settings.
"""

from __future__ import annotations

from orchestrator.manifest.model import (
    DEFAULT_JOB,
    EMBEDDED_ENDPOINT,
    JobConfig,
    Limits,
    Manifest,
    PriorityRule,
    SkipExisting,
    SourceConfig,
    SourceKind,
    Target,
)
from orchestrator.manifest.notify import NotifyConfig, NotifyEvent
from orchestrator.manifest.reading import MAX_MANIFEST_BYTES
from orchestrator.manifest.validation import load_manifest
from orchestrator.manifest.values import (
    MAX_USER_DATA,
    OUTPUT_PLACEHOLDERS,
    is_printable_ascii,
    output_template_problem,
    user_data_problem,
)

__all__ = [
    "DEFAULT_JOB",
    "EMBEDDED_ENDPOINT",
    "MAX_MANIFEST_BYTES",
    "MAX_USER_DATA",
    "OUTPUT_PLACEHOLDERS",
    "JobConfig",
    "Limits",
    "Manifest",
    "NotifyConfig",
    "NotifyEvent",
    "PriorityRule",
    "SkipExisting",
    "SourceConfig",
    "SourceKind",
    "Target",
    "is_printable_ascii",
    "load_manifest",
    "output_template_problem",
    "user_data_problem",
]
