#!/usr/bin/env python3
"""Load check: removals from concurrent clients against `clearfill serve` on loopback,
cycling through distinct per-request option sets, with the server's memory and
its /healthz latency watched throughout.

    python benchmarks/server_load.py [--requests 200] [--clients 8] [--option-sets 12] [--remover lama]

--remover lama (the default when torch is installed) writes a big-lama of the real
architecture at random weights and serves it, so the check shows what pooling
saves: every option set runs on the one loaded network. Clients honour 503 +
Retry-After by waiting and sending again; every request must end with a correct
image: none lost, and no 5xx other than 503.

Prints throughput, p50/p95 latency, the status counts, the server's RSS once warm
and at the end (target: growth under 50 MB), and the worst /healthz answer
(target: under 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import io as stdio
import itertools
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload(size=(200, 136)) -> tuple[bytes, bytes, np.ndarray]:
    image = Image.open(REPO / "examples" / "coffee" / "coffee.png").convert("RGB").resize(size)
    mask = Image.open(REPO / "examples" / "coffee" / "spoon-mask.png").resize(size)
    buffers = [stdio.BytesIO(), stdio.BytesIO()]
    image.save(buffers[0], format="PNG")
    mask.save(buffers[1], format="PNG")
    return buffers[0].getvalue(), buffers[1].getvalue(), np.asarray(image)


def option_sets(count: int) -> list[dict]:
    """Distinct per-request settings from the allow-list (same models, different plans)."""
    grid = itertools.product((16, 32, 48, 64), (0.0, 2.0, 4.0), (8.0, 16.0))
    return [{"seed": i, "overrides": {"crop.padding": padding, "mask.grow_pixels": grow, "crop.blend_pixels": blend}}
            for i, (padding, grow, blend) in zip(range(count), grid, strict=False)]


def random_big_lama(folder: Path) -> Path:
    import torch
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    path = folder / "big-lama-random.pth"
    torch.save({k: v.contiguous() for k, v in LaMa(in_nc=4, out_nc=3).state_dict().items()}, path)
    return path


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (the server's removal worker holds the models)."""
    total = 0.0
    for process in (pid, *descendants(pid)):
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children += [int(child) for child in (task / "children").read_text().split()]
    return [grand for child in children for grand in (child, *descendants(child))]


async def run(base: str, requests: int, clients: int, image: bytes, mask: bytes, original: np.ndarray,
              options: list[dict]):
    import json

    import httpx

    queue = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    results, busy, health = [], [], []

    async def client(http):
        while not queue.empty():
            i = queue.get_nowait()
            start = time.perf_counter()
            while True:
                response = await http.post(f"{base}/v1/remove", data={"options": json.dumps(options[i % len(options)])},
                                           files={"image": ("p.png", image, "image/png"),
                                                  "mask": ("m.png", mask, "image/png")})
                if response.status_code != 503:
                    break
                busy.append(1)
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            ok = response.status_code == 200 and np.asarray(
                Image.open(stdio.BytesIO(response.content))).shape == original.shape
            results.append((response.status_code, ok, time.perf_counter() - start))

    async def probe(http, stop: asyncio.Event):
        while not stop.is_set():
            start = time.perf_counter()
            await http.get(f"{base}/healthz")
            health.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)

    async with httpx.AsyncClient(timeout=600) as http, httpx.AsyncClient(timeout=10) as prober:
        stop = asyncio.Event()
        watcher = asyncio.create_task(probe(prober, stop))
        await asyncio.gather(*[client(http) for _ in range(clients)])
        stop.set()
        await watcher
    return results, len(busy), health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--option-sets", type=int, default=12)
    parser.add_argument("--remover", default=None, help="lama (random big-lama, needs torch), or a remover name")
    args = parser.parse_args()
    remover = args.remover
    if remover is None:
        try:
            import spandrel  # noqa: F401
            import torch  # noqa: F401

            remover = "lama"
        except ImportError:
            remover = "exemplar"
    folder = Path(tempfile.mkdtemp(prefix="clearfill-load-"))
    remover_arg = str(random_big_lama(folder)) if remover == "lama" else remover
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "clearfill.cli", "serve", "--port", str(port), "--preset",
                               "offline", "--remover", remover_arg, "--queue-size", "4", "--device", "cpu"],
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(300):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        image, mask, original = payload()
        options = option_sets(args.option_sets)
        # warm: load the model and touch every option set once
        asyncio.run(run(base, len(options), 1, image, mask, original, options))
        warm = rss_mb(server.pid)
        start = time.perf_counter()
        results, busy, health = asyncio.run(run(base, args.requests, args.clients, image, mask, original, options))
        elapsed = time.perf_counter() - start
        end = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
    statuses = {code: sum(1 for c, _, _ in results if c == code) for code in sorted({c for c, _, _ in results})}
    latencies = sorted(t for c, _, t in results if c == 200)
    good = sum(1 for c, ok, _ in results if ok)
    print(f"remover {remover}; {len(results)} requests, {args.clients} clients, {len(options)} option sets, "
          f"{elapsed:.1f} s: {good / elapsed:.2f} images/s")
    print(f"latency (first try to image, retries included): p50 {statistics.median(latencies):.2f} s, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f} s")
    print(f"final statuses: {statuses}; 503 answers along the way: {busy}; correct images: {good}; "
          f"lost: {args.requests - len(results)}; "
          f"other 5xx: {sum(n for c, n in statuses.items() if c >= 500 and c != 503)}")
    print(f"server RSS (with its worker): {warm:.0f} MB warm -> {end:.0f} MB after (growth {end - warm:+.0f} MB, "
          "target < 50 MB)")
    print(f"/healthz during the load: {len(health)} probes, worst {max(health) * 1000:.0f} ms, "
          f"p95 {sorted(health)[int(0.95 * (len(health) - 1))] * 1000:.0f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
