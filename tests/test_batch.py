"""Batch runs: matching, reports, exit codes, lossless resume after a kill, and the
Ray engine giving the same bytes as the local one."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clearfill import batch
from clearfill.cli import main
from helpers import disk_mask, photo_like

H, W = 72, 96
FAST = ["--preset", "fast", "--no-progress"]


def make_folder(root: Path, count: int, corrupt=(), missing_mask=(), subfolders=True) -> tuple[Path, Path]:
    images, masks = root / "images", root / "masks"
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = images / ("nested" if subfolders and i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"photo{i:03d}.png"
        if i in corrupt:
            path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        else:
            Image.fromarray(photo_like(rng, H, W)).save(path)
        if i not in missing_mask:
            masks.mkdir(exist_ok=True)
            Image.fromarray(disk_mask(H, W, 30 + i % 20, 30, 10)).save(masks / f"photo{i:03d}.png")
    return images, masks


def read_report(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_batch_reports_every_item_and_fails_when_any_failed(tmp_path, capsys):
    images, masks = make_folder(tmp_path, 8, corrupt={2}, missing_mask={5})
    (masks / "stray.png").write_bytes((masks / "photo000.png").read_bytes())
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    code = main(["batch", str(images), "--masks", str(masks), "-o", str(out), "--report", str(report), *FAST])
    assert code == 3
    records = read_report(report)
    by_status = {}
    for record in records:
        by_status.setdefault(record["status"], []).append(record)
    assert len(by_status["ok"]) == 6
    assert {Path(r["image"]).name for r in by_status["error"]} == {"photo002.png", "photo005.png"}
    assert any("no mask found" in r["message"] for r in by_status["error"])
    assert any("truncated or corrupt" in r["message"] or "not an image" in r["message"] for r in by_status["error"])
    assert by_status["unmatched"][0]["mask"].endswith("stray.png")
    for record in by_status["ok"]:
        assert Path(record["output"]).is_file() and record["stages"]["remove"] > 0 and record["seed"]
    assert (out / "nested" / "photo000.png").is_file()  # relative structure kept
    assert "6 done, 0 already done, 2 failed, 1 masks without an image" in capsys.readouterr().err


def test_all_ok_exits_0_and_format_option(tmp_path):
    images, masks = make_folder(tmp_path, 3, subfolders=False)
    out = tmp_path / "out"
    assert main(["batch", str(images), "--masks", str(masks), "-o", str(out), "--format", "jpg", *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["photo000.jpg", "photo001.jpg", "photo002.jpg"]


def test_single_mask_for_every_image_and_manifests(tmp_path):
    images, masks = make_folder(tmp_path, 3, subfolders=False)
    out = tmp_path / "out"
    assert main(["batch", str(images), "--masks", str(masks / "photo000.png"), "-o", str(out), *FAST]) == 0
    assert len(list(out.iterdir())) == 3
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,mask,output\n" + "".join(
        f"images/photo00{i}.png,masks/photo00{i}.png,from-csv/{i}.png\n" for i in range(3)))
    assert main(["batch", str(manifest), *FAST]) == 0
    assert sorted(p.name for p in (tmp_path / "from-csv").iterdir()) == ["0.png", "1.png", "2.png"]
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text("".join(json.dumps({"image": f"images/photo00{i}.png", "mask": f"masks/photo00{i}.png"}) + "\n"
                             for i in range(2)))
    assert main(["batch", str(jsonl), "-o", str(tmp_path / "from-jsonl"), *FAST]) == 0
    assert len(list((tmp_path / "from-jsonl").iterdir())) == 2


def test_resume_skips_finished_items(tmp_path):
    images, masks = make_folder(tmp_path, 4, subfolders=False)
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    args = ["batch", str(images), "--masks", str(masks), "-o", str(out), "--report", str(report), *FAST]
    assert main(args) == 0
    (out / "photo001.png").unlink()
    assert main([*args, "--resume"]) == 0
    second_run = read_report(report)[4:]
    assert sorted(r["status"] for r in second_run) == ["ok", "skipped", "skipped", "skipped"]


def test_a_killed_run_resumes_to_the_same_outputs_as_a_clean_run(tmp_path):
    images, masks = make_folder(tmp_path, 24, subfolders=False)
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    assert main(["batch", str(images), "--masks", str(masks), "-o", str(clean), *FAST]) == 0
    command = [sys.executable, "-m", "clearfill.cli", "batch", str(images), "--masks", str(masks),
               "-o", str(resumed), *FAST]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(resumed.glob("*.png"))) < 5:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    finished = len(list(resumed.glob("*.png")))
    assert 5 <= finished < 24, "the kill should land mid-run"
    assert subprocess.run([*command, "--resume"], capture_output=True).returncode == 0
    names = sorted(p.name for p in clean.iterdir())
    assert sorted(p.name for p in resumed.iterdir()) == names  # no stray temp files either
    for name in names:
        assert (resumed / name).read_bytes() == (clean / name).read_bytes(), name


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_after_the_items_in_flight(tmp_path, workers):
    images, masks = make_folder(tmp_path, 40, subfolders=False)
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "clearfill.cli", "batch", str(images), "--masks", str(masks), "-o", str(out),
               "--workers", workers, "--report", str(report), *FAST]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "interrupted" in err
    outputs = sorted(p.name for p in out.iterdir())
    reported = sorted(Path(r["output"]).name for r in read_report(report) if r["status"] == "ok")
    assert outputs == reported  # every finished item is both written and reported, nothing half-done
    assert len(outputs) < 40


def test_ray_engine_gives_byte_identical_outputs(tmp_path, capfd):
    pytest.importorskip("ray")
    images, masks = make_folder(tmp_path, 6, corrupt={4})
    local, distributed = tmp_path / "local", tmp_path / "ray"
    plan_local = batch.plan_folder(images, masks, local)
    plan_ray = batch.plan_folder(images, masks, distributed)
    settings = batch.Settings(preset="offline")
    assert batch.run_batch(plan_local, settings, engine="local").errors == 1
    summary = batch.run_batch(plan_ray, settings, engine="ray", workers=2)
    assert (summary.ok, summary.errors) == (5, 1)
    for path in sorted(local.rglob("*.png")):
        twin = distributed / path.relative_to(local)
        assert twin.read_bytes() == path.read_bytes(), path.name
    assert len(list(distributed.rglob("*.png"))) == 5
    printed = "".join(capfd.readouterr())
    assert "Running Dataset" not in printed and "Starting execution" not in printed  # Ray Data's INFO chatter
