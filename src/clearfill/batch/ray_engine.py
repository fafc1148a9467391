"""The Ray engine: Ray Data maps a callable class over the items, so each actor
loads the pipeline (and its models) once; Ray schedules the actors on whatever
cluster it is connected to. No scheduler of our own."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Callable, Iterable

from .plan import Item
from .work import Settings, Worker


class _RemoveBatch:
    """Ray Data actor: one pipeline per actor, items in, JSON reports out."""

    def __init__(self, settings: Settings):
        self.worker = Worker(settings)

    def __call__(self, batch: dict) -> dict:
        reports = [
            self.worker(Item(image, mask, output))
            for image, mask, output in zip(batch["image"], batch["mask"], batch["output"], strict=True)
        ]
        return {"report": [json.dumps(report) for report in reports]}


def quiet_ray_data() -> None:
    """The batch command reports progress itself (one bar, one report line per
    item); Ray Data's INFO lines about its plan and execution would interleave
    with it. Its warnings still show."""
    import ray.data  # noqa: F401  (configures its logger on import: set the level after that)

    logging.getLogger("ray.data").setLevel(logging.WARNING)


def run_ray(items: Iterable[Item], settings: Settings, actors: int, on_result: Callable[[dict], None], *,
            address: str | None = None, gpus_per_worker: float = 0.0, cpus: int | None = None) -> None:
    import ray

    if not ray.is_initialized():
        # address None starts a local instance; "auto" or ray://host:port joins an existing cluster
        ray.init(address=address, num_cpus=cpus if address is None else None, log_to_driver=False,
                 include_dashboard=False, ignore_reinit_error=True, logging_level=logging.WARNING)
    quiet_ray_data()
    dataset = ray.data.from_items([asdict(item) for item in items])
    reports = dataset.map_batches(
        _RemoveBatch,
        fn_constructor_kwargs={"settings": settings},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
        num_gpus=gpus_per_worker,
        batch_format="numpy",
    )
    for row in reports.iter_rows():
        on_result(json.loads(row["report"]))
