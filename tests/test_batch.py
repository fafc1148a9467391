"""Batch runs: matching, reports, exit codes, lossless resume after a kill, and the
Ray engine giving the same bytes as the local one."""

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import disk_mask, photo_like
from PIL import Image

from clearfill import batch
from clearfill.cli import main

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


def visible(folder: Path) -> list[Path]:
    """A folder's entries, without the batch ledger and other hidden files."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


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
    assert [p.name for p in visible(out)] == ["photo000.jpg", "photo001.jpg", "photo002.jpg"]


def test_single_mask_for_every_image_and_manifests(tmp_path):
    images, masks = make_folder(tmp_path, 3, subfolders=False)
    out = tmp_path / "out"
    assert main(["batch", str(images), "--masks", str(masks / "photo000.png"), "-o", str(out), *FAST]) == 0
    assert len(visible(out)) == 3
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,mask,output\n" + "".join(
        f"images/photo00{i}.png,masks/photo00{i}.png,from-csv/{i}.png\n" for i in range(3)))
    assert main(["batch", str(manifest), *FAST]) == 0
    assert [p.name for p in visible(tmp_path / "from-csv")] == ["0.png", "1.png", "2.png"]
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text("".join(json.dumps({"image": f"images/photo00{i}.png", "mask": f"masks/photo00{i}.png"}) + "\n"
                             for i in range(2)))
    assert main(["batch", str(jsonl), "-o", str(tmp_path / "from-jsonl"), *FAST]) == 0
    assert len(visible(tmp_path / "from-jsonl")) == 2


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
    assert sorted(p.name for p in resumed.iterdir()) == names  # no stray temp files either (the ledgers match)
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
    outputs = [p.name for p in visible(out)]
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


# ----------------------------------------------------------------------------- what a batch may never do


def snapshot(*folders: Path) -> dict:
    return {path: path.read_bytes() for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()}


def batch_error(capsys, argv: list[str]) -> str:
    code = main([*argv, *FAST])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clearfill: error: "), err
    return lines[0]


def test_a_batch_into_its_own_input_folder_is_refused_before_any_work(tmp_path, capsys):
    images, masks = make_folder(tmp_path, 5)
    before = snapshot(images, masks)
    message = batch_error(capsys, ["batch", str(images), "--masks", str(masks), "-o", str(images)])
    assert "would overwrite its own input" in message and "(and 2 more)" in message  # 5 images
    message = batch_error(capsys, ["batch", str(images), "--masks", str(masks), "-o", str(masks), "--overwrite"])
    assert "photo001.png is the mask" in message
    assert snapshot(images, masks) == before
    # a link in the output folder that points at an input counts as that input
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo001.png").symlink_to(images / "photo001.png")
    message = batch_error(capsys, ["batch", str(images), "--masks", str(masks), "-o", str(out), "--overwrite"])
    assert "photo001.png is the image" in message
    assert snapshot(images, masks) == before


@pytest.mark.parametrize("row_output, fragment", [
    ("images/photo000.png", "would overwrite its own input"),
    ("masks/photo001.png", "would overwrite its own input"),
    ("list.csv", "is the manifest"),
    ("../../escape.png", "must lie inside the output folder"),
    ("../data-2/sibling.png", "must lie inside the output folder"),  # shares the root's name as a prefix
    ("{outside}/abs.png", "must lie inside the output folder"),
    ("file://{outside}/uri.png", "must lie inside the output folder"),
    ("s3://bucket/out.png", "must lie inside the output folder"),
])
def test_manifest_outputs_that_are_inputs_or_outside_the_root_are_refused(tmp_path, capsys, row_output, fragment):
    images, masks = make_folder(tmp_path / "data", 3, subfolders=False)
    outside = tmp_path / "elsewhere"
    manifest = tmp_path / "data" / "list.csv"
    rows = [f"images/photo00{i}.png,masks/photo00{i}.png,out/{i}.png" for i in range(3)]
    rows[1] = f"images/photo001.png,masks/photo001.png,{row_output.format(outside=outside)}"
    manifest.write_text("image,mask,output\n" + "\n".join(rows) + "\n")
    before = snapshot(tmp_path)
    message = batch_error(capsys, ["batch", str(manifest)])
    assert fragment in message
    assert snapshot(tmp_path) == before  # nothing written, not even the items before the bad row
    assert not outside.exists()


def test_manifest_outputs_are_relative_to_the_output_folder_when_one_is_given(tmp_path, capsys):
    images, masks = make_folder(tmp_path, 2, subfolders=False)
    manifest = tmp_path / "list.jsonl"
    manifest.write_text("".join(json.dumps({"image": f"images/photo00{i}.png", "mask": f"masks/photo00{i}.png",
                                            "output": f"sub/{i}.png"}) + "\n" for i in range(2)))
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "-o", str(out), *FAST]) == 0
    assert [p.name for p in visible(out / "sub")] == ["0.png", "1.png"]


def test_two_items_for_one_output_are_refused(tmp_path, capsys):
    images, masks = make_folder(tmp_path, 2, subfolders=False)
    Image.open(images / "photo000.png").save(images / "photo000.jpg", quality=95)
    message = batch_error(capsys, ["batch", str(images), "--masks", str(masks), "-o", str(tmp_path / "out"),
                                   "--format", "png"])
    assert "two items would be written to one output" in message and "photo000.jpg" in message
    assert not (tmp_path / "out").exists()


def test_existing_files_are_replaced_only_when_they_are_this_batchs_own(tmp_path, capsys):
    images, masks = make_folder(tmp_path, 3, subfolders=False)
    out = tmp_path / "out"
    argv = ["batch", str(images), "--masks", str(masks), "-o", str(out)]
    assert main([*argv, *FAST]) == 0
    first = snapshot(out)
    assert main([*argv, *FAST]) == 0  # the same batch again replaces its own results without asking
    assert {p.name for p in first} == {p.name for p in snapshot(out)}
    # a file the batch did not write: an item with another mask, then a stranger's file
    assert main(["batch", str(images), "--masks", str(masks / "photo000.png"), "-o", str(out), *FAST]) == 2
    assert "outputs exist that this batch did not write" in capsys.readouterr().err
    (out / "photo001.png").write_bytes(b"the user's own file")
    (out / "photo001.png").touch()
    ours = Path(out / ".clearfill-batch.jsonl").read_text()
    (out / ".clearfill-batch.jsonl").write_text("\n".join(line for line in ours.splitlines()
                                                           if "photo001" not in line) + "\n")
    message = batch_error(capsys, argv)
    assert "did not write" in message and "photo001.png" in message and "--overwrite" in message
    assert (out / "photo001.png").read_bytes() == b"the user's own file"
    assert main([*argv, "--resume", *FAST]) == 0  # resume keeps it
    assert (out / "photo001.png").read_bytes() == b"the user's own file"
    assert main([*argv, "--overwrite", *FAST]) == 0
    assert (out / "photo001.png").read_bytes() == first[out / "photo001.png"]


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(tmp_path):
    images, masks = make_folder(tmp_path, 3, subfolders=False)
    out = images / "clean"
    for _ in range(2):
        assert main(["batch", str(images), "--masks", str(masks), "-o", str(out), *FAST]) == 0
    assert [p.name for p in visible(out)] == [
        "photo000.png", "photo001.png", "photo002.png"]


def test_a_report_or_output_folder_that_cannot_be_written_fails_before_the_work(tmp_path, capsys):
    images, masks = make_folder(tmp_path, 2, subfolders=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    message = batch_error(capsys, ["batch", str(images), "--masks", str(masks), "-o", str(blocker / "out")])
    assert "cannot write to the output folder" in message
    message = batch_error(capsys, ["batch", str(images), "--masks", str(masks), "-o", str(tmp_path / "out"),
                                   "--report", str(images / "photo000.png")])
    assert "the report must be a file of its own" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.png"))


# ----------------------------------------------------------------------------- worker processes


def test_a_worker_that_dies_fails_only_its_item_and_the_run_goes_on(tmp_path):
    import threading

    from helpers import process_or_die

    from clearfill.batch import local

    images, masks = make_folder(tmp_path, 9, subfolders=False)
    (images / "photo004.png").rename(images / "crash004.png")
    (masks / "photo004.png").rename(masks / "crash004.png")
    plan = batch.plan_folder(images, masks, tmp_path / "out")
    records = []
    local._run_pool(plan.items, batch.Settings(preset="fast"), 2, records.append, threading.Event(),
                    process=process_or_die)
    by_image = {Path(r["image"]).name: r for r in records}
    assert len(records) == 9 and len(by_image) == 9  # every item reported exactly once
    crashed = by_image["crash004.png"]
    assert crashed["status"] == "error" and "worker process died" in crashed["message"]
    assert all(r["status"] == "ok" for name, r in by_image.items() if name != "crash004.png")
    assert len(visible(tmp_path / "out")) == 8


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(child) for child in (task / "children").read_text().split()}
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the worker processes")
def test_workers_die_with_a_killed_parent_and_write_nothing_after(tmp_path):
    images, masks = make_folder(tmp_path, 60, subfolders=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "clearfill.cli", "batch", str(images), "--masks", str(masks), "-o", str(out),
               "--workers", "2", *FAST]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.05)
    workers = {pid for pid in _children(run.pid) if "python" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()}
    assert len(workers) >= 2
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() and
                                         "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                                         for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
    assert not alive, "workers outlived the batch"
    written = len(list(out.glob("*.png")))
    time.sleep(1.5)
    assert len(list(out.glob("*.png"))) == written < 60


def test_temp_files_left_by_a_killed_run_are_removed_but_nothing_else(tmp_path):
    images, masks = make_folder(tmp_path, 2, subfolders=False)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".photo000.png.k3j9x2.part"  # what atomic_writer leaves when killed mid-write
    stale.write_bytes(b"half an image")
    keep = [out / ".photo000.png.notes", out / "photo000.png.part", out / ".other.png.abc.part"]
    for path in keep:
        path.write_bytes(b"someone else's")
    assert main(["batch", str(images), "--masks", str(masks), "-o", str(out), *FAST]) == 0
    assert not stale.exists()
    assert all(path.read_bytes() == b"someone else's" for path in keep)
