"""Local emulator of Tencent Cloud Infinite (CI) for picjobs."""
