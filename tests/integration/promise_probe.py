"""A model that reports from inside the worker processes: which process loaded and ran it.

Saved whole with ``torch.save`` (a pickle), it is loaded only with ``--trust-pickle`` and only
in the workers (the parent never unpickles). Its class must be importable there by name: the
tests put this folder on ``PYTHONPATH`` (:func:`probe_env`).

* Unpickling it appends ``<pid>`` to ``unpickled.log`` (the marker that the pickle ran, and
  where).
* Its first call in each process appends ``<pid> <batch>`` to ``calls.log``: which process
  measured which configuration.
* At ``fail_batch`` it raises (the configuration's status is ``error``), at ``crash_batch``
  the process ends at once with ``os._exit(3)`` (``crashed``), and at ``block_batch`` it writes
  ``blocked`` and sleeps: the run cannot finish, so a signal sent then finds it still running.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class Probe(nn.Module):
    def __init__(self, folder: Path, *, fail_batch: int | None = None, crash_batch: int | None = None,
                 block_batch: int | None = None) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)
        self.folder = str(folder)
        self.fail_batch, self.crash_batch, self.block_batch = fail_batch, crash_batch, block_batch
        self.seen = False

    def __setstate__(self, state: dict) -> None:  # type: ignore[type-arg]
        super().__setstate__(state)
        with open(os.path.join(self.folder, "unpickled.log"), "a") as fh:
            fh.write(f"{os.getpid()}\n")
        self.seen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = int(x.shape[0])
        if not self.seen:
            self.seen = True
            with open(os.path.join(self.folder, "calls.log"), "a") as fh:
                fh.write(f"{os.getpid()} {batch}\n")
        if batch == self.fail_batch:
            raise RuntimeError(f"probe: fails at batch {batch} on purpose")
        if batch == self.crash_batch:
            os._exit(3)
        if batch == self.block_batch:
            # Atomically (a temporary name, then a rename): the test reads the pid as soon as
            # the name exists, and once read an empty file that write_text had only created.
            Path(self.folder, "blocked.tmp").write_text(str(os.getpid()))
            os.replace(os.path.join(self.folder, "blocked.tmp"), os.path.join(self.folder, "blocked"))
            time.sleep(3600)
        return self.linear(x)


def save_probe(folder: Path, **behaviour: int | None) -> Path:
    """A pickled :class:`Probe` in ``folder`` (which also receives its logs)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "probe.pt"
    torch.save(Probe(folder, **behaviour), path)
    return path


def probe_env(**extra: str) -> dict[str, str]:
    """The CLI's environment with this folder importable (the workers unpickle Probe)."""
    from conftest import cli_env  # the test process only: workers import just the class

    env = cli_env(**extra)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
    return env


def calls(folder: Path) -> list[tuple[int, int]]:
    """(pid, batch) of each process's first call, in order."""
    log = folder / "calls.log"
    if not log.exists():
        return []
    return [(int(p), int(b)) for p, b in (line.split() for line in log.read_text().splitlines())]


def unpickled_by(folder: Path) -> set[int]:
    log = folder / "unpickled.log"
    return {int(line) for line in log.read_text().split()} if log.exists() else set()
