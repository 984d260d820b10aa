"""Stage 4 of 7: process launchers. A fresh interpreter per configuration
(:mod:`.worker`) and N data-parallel ranks through torchrun (:mod:`.torchrun`), sharing one
call/answer format and one blocking spawn-and-wait (:mod:`.process`)."""

from devicebench.launchers.process import WorkerResult
from devicebench.launchers.worker import run_in_worker

__all__ = ["WorkerResult", "run_in_worker"]
