"""The baseline: what a user writes without picjobs, with Tencent's official SDK.

    python -m benchmarks.baseline --keys KEYS.txt --bucket B --output-bucket O --ip 127.0.0.1 --port P

`cos-python-sdk-v5` with a `ThreadPoolExecutor(16)`: one `ci_create_media_pic_jobs` per key, then
`ci_get_media_pic_jobs` for that job until its state is final (first poll at once, then every
`--poll` seconds). Credentials come from COS_SECRET_ID / COS_SECRET_KEY. Prints one JSON line:
jobs, success, failed, errors, wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from qcloud_cos import CosConfig, CosS3Client

FINAL = {"Success", "Failed", "Cancel"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline")
    parser.add_argument("--keys", required=True, type=Path, help="one object key a line")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--output-bucket", required=True)
    parser.add_argument("--region", default="ap-guangzhou")
    parser.add_argument("--rule", default="imageMogr2/rotate/90")
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args(argv)

    started = time.monotonic()
    config = CosConfig(
        Region=args.region,
        SecretId=os.environ["COS_SECRET_ID"],
        SecretKey=os.environ["COS_SECRET_KEY"],
        IP=args.ip,
        Port=args.port,
        Scheme="http",
    )
    client = CosS3Client(config)
    queue_id = client.ci_get_media_pic_queue(Bucket=args.bucket)["QueueList"][0]["QueueId"]

    def process(key: str) -> str:
        created = client.ci_create_media_pic_jobs(
            Bucket=args.bucket,
            Jobs={
                "Input": {"Object": key},
                "Tag": "PicProcess",
                "Operation": {
                    "PicProcess": {"IsPicInfo": "false", "ProcessRule": args.rule},
                    "Output": {
                        "Bucket": args.output_bucket,
                        "Region": args.region,
                        "Object": f"o/{key}",
                    },
                    "JobLevel": "0",
                },
                "QueueId": queue_id,
            },
            Lst={},
            ContentType="application/xml",
        )
        job_id = created["JobsDetail"][0]["JobId"]
        while True:
            described: dict[str, Any] = client.ci_get_media_pic_jobs(
                Bucket=args.bucket, JobIDs=job_id
            )
            state = str(described["JobsDetail"][0]["State"])
            if state in FINAL:
                return state
            time.sleep(args.poll)

    keys = [line for line in args.keys.read_text().splitlines() if line]
    states: dict[str, int] = {}
    errors = 0
    with ThreadPoolExecutor(args.workers) as pool:
        for future in [pool.submit(process, key) for key in keys]:
            try:
                state = future.result()
            except Exception:
                errors += 1
                continue
            states[state] = states.get(state, 0) + 1
    result = {
        "jobs": len(keys),
        "success": states.get("Success", 0),
        "failed": sum(n for s, n in states.items() if s != "Success"),
        "errors": errors,
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(result))
    sys.exit(0 if result["success"] == len(keys) else 1)


if __name__ == "__main__":
    main()
