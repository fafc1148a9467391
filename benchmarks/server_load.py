#!/usr/bin/env python3
"""Load check: 200 removals from 8 concurrent clients against `clearfill serve` on
loopback with the offline preset. Clients honour 503 + Retry-After by waiting and
sending again; every request must end with a correct image: none lost, and no
5xx other than 503.

    python benchmarks/server_load.py [--requests 200] [--clients 8]

Prints throughput, p50/p95 latency and the status counts.
"""

from __future__ import annotations

import argparse
import asyncio
import io as stdio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload() -> tuple[bytes, bytes, np.ndarray]:
    image = Image.open(REPO / "examples" / "coffee" / "coffee.png").convert("RGB").resize((300, 200))
    mask = Image.open(REPO / "examples" / "coffee" / "spoon-mask.png").resize((300, 200))
    buffers = [stdio.BytesIO(), stdio.BytesIO()]
    image.save(buffers[0], format="PNG")
    mask.save(buffers[1], format="PNG")
    return buffers[0].getvalue(), buffers[1].getvalue(), np.asarray(image)


async def run(url: str, requests: int, clients: int, image: bytes, mask: bytes, original: np.ndarray):
    import httpx

    queue = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    results = []

    busy = []

    async def client(http):
        while not queue.empty():
            queue.get_nowait()
            start = time.perf_counter()
            while True:
                response = await http.post(url, files={"image": ("p.png", image, "image/png"),
                                                       "mask": ("m.png", mask, "image/png")})
                if response.status_code != 503:
                    break
                busy.append(1)
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            ok = response.status_code == 200 and np.asarray(
                Image.open(stdio.BytesIO(response.content))).shape == original.shape
            results.append((response.status_code, ok, time.perf_counter() - start))

    async with httpx.AsyncClient(timeout=600) as http:
        await asyncio.gather(*[client(http) for _ in range(clients)])
    return results, len(busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "clearfill.cli", "serve", "--port", str(port),
                               "--preset", "offline", "--queue-size", "4"])
    try:
        import httpx

        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        image, mask, original = payload()
        start = time.perf_counter()
        results, busy = asyncio.run(run(f"http://127.0.0.1:{port}/v1/remove", args.requests, args.clients, image, mask,
                                  original))
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()
    statuses = {code: sum(1 for c, _, _ in results if c == code) for code in sorted({c for c, _, _ in results})}
    latencies = sorted(t for c, _, t in results if c == 200)
    good = sum(1 for c, ok, _ in results if ok)
    print(f"{len(results)} requests, {args.clients} clients, {elapsed:.1f} s: {good / elapsed:.2f} images/s")
    print(f"latency (first try to image, retries included): p50 {statistics.median(latencies):.2f} s, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f} s")
    print(f"final statuses: {statuses}; 503 answers along the way: {busy}; correct images: {good}; "
          f"lost: {args.requests - len(results)}; "
          f"other 5xx: {sum(n for c, n in statuses.items() if c >= 500 and c != 503)}")


if __name__ == "__main__":
    main()
