"""Benchmarks of picjobs against the official SDK, and the performance targets they check.

    python -m benchmarks            # every scenario at full size (a few minutes)
    python -m benchmarks --quick    # the same harness at smoke size (seconds)

See BENCHMARKS.md for the scenarios, the targets and the figures of a run. This package imports
nothing itself: its modules also run as child processes (`benchmarks.serve`,
`benchmarks.baseline`, `benchmarks.floor`) whose start-up cost is measured.
"""
