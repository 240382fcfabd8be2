"""The engine: pacing, retries, submission, reconciliation and tracking."""
