"""`clearfill serve` as a user starts it: what it prints, what it warns about, how
its connections are timed out, and an event loop that stays responsive while a
16 MP removal runs."""

import io as stdio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from helpers import disk_mask, photo_like  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve():
    started = []

    def start(*args, host="127.0.0.1"):
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "clearfill.cli", "serve", "--host", host, "--port", str(port),
                                    "--device", "cpu", *args], stderr=subprocess.PIPE, text=True)
        started.append(process)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return process, port
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("the server did not start")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def stderr_of(process) -> str:
    process.terminate()
    return process.communicate(timeout=20)[1]


def test_serve_prints_its_url_and_what_each_preset_runs(serve):
    process, port = serve("--preset", "fast", "--remover", "ns")
    err = stderr_of(process)
    assert f"clearfill serve: http://127.0.0.1:{port}/" in err
    assert "preset fast (default): remove ns (requested)" in err and "preset reference:" in err
    assert "warning" not in err, err


def test_sigterm_stops_the_server_through_its_exit_handlers(serve):
    # uvicorn raises SIGTERM again after its graceful shutdown; killed by it, the process
    # would skip the exit handlers that unlink its worker queues' semaphores
    process, port = serve("--preset", "fast", "--remover", "ns")
    image, mask = stdio.BytesIO(), stdio.BytesIO()
    Image.fromarray(photo_like(np.random.default_rng(0), 32, 48)).save(image, format="PNG")
    Image.fromarray(disk_mask(32, 48, 24, 16, 6)).save(mask, format="PNG")
    httpx.post(f"http://127.0.0.1:{port}/v1/remove", timeout=60, files={
        "image": ("a.png", image.getvalue()), "mask": ("m.png", mask.getvalue())}).raise_for_status()
    stderr_of(process)
    assert process.returncode == 143, process.returncode


def test_a_public_bind_without_a_token_warns_and_with_one_does_not(serve):
    process, port = serve(host="0.0.0.0")
    assert "listening on 0.0.0.0 without --token" in stderr_of(process)
    process, port = serve("--token", "t0k3n", host="0.0.0.0")
    err = stderr_of(process)
    assert "without --token" not in err and "#token=t0k3n" in err


def test_slow_headers_are_cut_off_and_normal_requests_are_not(serve):
    process, port = serve("--header-timeout", "1")
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        slow.settimeout(5)
        start = time.time()
        assert slow.recv(1024) == b""  # closed by the server
        assert time.time() - start < 3
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_healthz_answers_within_100_ms_during_a_16_mp_removal(serve):
    process, port = serve("--preset", "fast", "--max-upload-mb", "100", "--max-pixels", "20000000")
    rng = np.random.default_rng(0)
    height, width = 4000, 4000
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (rng.random((1, width, 3)) * 255).astype(np.uint8)
    buffers = [stdio.BytesIO(), stdio.BytesIO()]
    Image.fromarray(image).save(buffers[0], format="JPEG", quality=90)
    Image.fromarray(disk_mask(height, width, 2000, 2000, 300)).save(buffers[1], format="PNG")
    folder = Path(tempfile.mkdtemp(prefix="clearfill-16mp-"))
    (folder / "big.jpg").write_bytes(buffers[0].getvalue())
    (folder / "mask.png").write_bytes(buffers[1].getvalue())
    # From another process: a client thread here would hold this process's GIL and time itself, not the server.
    sender = subprocess.Popen([sys.executable, "-c", (
        "import httpx, sys; f = sys.argv[1]; r = httpx.post(sys.argv[2], timeout=300, files={"
        "'image': ('big.jpg', open(f + '/big.jpg', 'rb').read(), 'image/jpeg'),"
        "'mask': ('m.png', open(f + '/mask.png', 'rb').read(), 'image/png')}); print(r.status_code)"),
        str(folder), f"http://127.0.0.1:{port}/v1/remove"], stdout=subprocess.PIPE, text=True)
    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        while sender.poll() is None:
            start = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.02)
    assert sender.communicate()[0].strip() == "200"
    shutil.rmtree(folder, ignore_errors=True)
    assert len(latencies) > 20, "the removal should take long enough to measure"
    typical, worst = float(np.percentile(latencies, 95)), max(latencies)
    print(f"/healthz 95th percentile {typical * 1000:.0f} ms, worst {worst * 1000:.0f} ms over {len(latencies)} probes")
    # a removal blocking the event loop would hold every probe for seconds; on two busy cores the scheduler
    # alone delays an odd probe past 100 ms (131 ms once in 302), so the bound is on the 95th percentile
    assert typical < 0.1 and worst < 0.5, \
        f"/healthz 95th percentile {typical * 1000:.0f} ms, worst {worst * 1000:.0f} ms"


def test_connections_past_the_cap_get_503(serve):
    process, port = serve("--preset", "fast", "--max-connections", "2", "--header-timeout", "30")
    holders = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]  # idle: headers never finish
    try:
        for holder in holders:
            holder.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 503
    finally:
        for holder in holders:
            holder.close()
    deadline = time.time() + 10
    while httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code != 200:
        assert time.time() < deadline, "the server did not take connections again"
        time.sleep(0.2)
