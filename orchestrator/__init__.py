"""picjobs: bulk image processing on Tencent Cloud Infinite, tracked in a SQLite ledger."""

__version__ = "0.1.0"
