"""Upload throughput of the S3 store versus what `aws s3 cp` runs, side by side in one run.

The same file (random bytes) goes to a local versitygw (started here through
tests/integration/s3_harness.py; built by scripts/s3-server.sh) by (a) `S3ObjectStore.put_file`
(storage/s3.py: SHA-256 per part verified by the server, plus the whole file's SHA-256) and
(b) boto3's `upload_file` with s3transfer's defaults (8 MiB parts, 10 in flight: the AWS CLI's
`aws s3 cp`), alternating a, b, a, b, ... Prints MiB/s per run, the medians and their ratio.
Goal: ours within 10 % of the baseline.

    .venv/bin/python -m bench.s3_upload [--size-mib 256] [--rounds 5] [--part-mib 16]
                                         [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from ffpool.settings import MiB
from ffpool.storage.objects import ObjectRef
from ffpool.storage.s3 import S3ObjectStore
from ffpool.storage.s3_config import S3ClientConfig
from tests.integration.s3_harness import S3Server, versitygw_binary


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for start in range(0, size, 16 * MiB):
            out.write(os.urandom(min(16 * MiB, size - start)))


async def ours(store: S3ObjectStore, bucket: str, source: Path) -> float:
    started = time.perf_counter()
    stored = await store.put_file(ObjectRef(bucket, "ours.bin"), source, "application/octet-stream")
    elapsed = time.perf_counter() - started
    assert stored.size == source.stat().st_size
    return elapsed


def baseline(server: S3Server, bucket: str, source: Path) -> float:
    client = server.client()
    started = time.perf_counter()
    client.upload_file(str(source), bucket, "baseline.bin")
    return time.perf_counter() - started


async def main(size_mib: int, rounds: int, part_mib: int, concurrency: int) -> None:
    binary = versitygw_binary()
    if binary is None:
        raise SystemExit("versitygw is not built: run scripts/s3-server.sh")
    with tempfile.TemporaryDirectory() as tmp:
        server = S3Server(binary, Path(tmp) / "s3")
        server.start()
        try:
            bucket = server.make_bucket("bench")
            source = Path(tmp) / "source.bin"
            write_random(source, size_mib * MiB)
            base = S3ClientConfig.from_settings(server.settings())
            config = dataclasses.replace(base, part_size=part_mib * MiB, concurrency=concurrency)
            store = S3ObjectStore(config)
            try:
                await ours(store, bucket, source)  # warm-up (connections, models), not counted
                a_t, b_t = [], []
                print(f"{size_mib} MiB, ours: {part_mib} MiB parts x {concurrency} in flight")
                print(f"{'round':>5} {'ours MiB/s':>11} {'boto3 MiB/s':>12}")
                for n in range(rounds):
                    a_t.append(await ours(store, bucket, source))
                    b_t.append(await asyncio.to_thread(baseline, server, bucket, source))
                    print(f"{n + 1:5} {size_mib / a_t[-1]:11.1f} {size_mib / b_t[-1]:12.1f}")
            finally:
                await store.close()
            a, b = size_mib / statistics.median(a_t), size_mib / statistics.median(b_t)
            print(f"{'median':>5} {a:11.1f} {b:12.1f}   ours/baseline {a / b:.3f}x")
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.size_mib, args.rounds, args.part_mib, args.concurrency))
