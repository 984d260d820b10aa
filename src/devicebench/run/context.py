"""One run's lifecycle, the same for inference, training and tuning runs.

A :class:`RunContext` is entered once per run: it stores the run as ``running``, keeps each
record the moment it exists (in memory and in the store), gives the run the environment its
first record measured, and on leaving marks the run ``complete``, ``failed`` or
``interrupted`` (Ctrl-C, or SIGTERM as :class:`~devicebench.errors.Terminated`) and writes
the JSON file, with ``"partial": true`` unless the run completed. The interrupt propagates:
nothing finished is lost on the way out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from devicebench._version import __version__
from devicebench.results.jsonio import dump_json, run_document
from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord, new_run_id
from devicebench.results.store import Store

if TYPE_CHECKING:
    # results.llm imports torch (through measure.llm): an inference run's parent must not pay
    # for it before its fork server is even started.
    from devicebench.results.llm import LlmRecord

__all__ = ["RunContext", "adopt_environment", "failure_message"]

R = TypeVar("R", InferenceRecord, TrainingRecord, "LlmRecord")
#: Builds the run's JSON document: (run, records, partial) -> JSON-ready dict.
Document = Callable[[RunInfo, list[Any], bool], dict[str, Any]]


def _default_document(run: RunInfo, records: list[Any], partial: bool) -> dict[str, Any]:
    return run_document(run, records, partial=partial)


def failure_message(error: str, detail: str) -> str:
    """What a crashed configuration's record says: the error and the tail of its detail."""
    return f"{error}\n{detail[-1500:]}".strip()


def adopt_environment(run: RunInfo, environment: dict[str, Any], store: Store | None) -> None:
    """Give the run the environment of its first measured record (measured in the worker, so
    the parent never touches the GPU), in memory and in the store."""
    if run.environment or not environment:
        return
    run.environment = environment
    run.hostname = environment.get("hostname", "")
    if store is not None:
        store.update_run_environment(run.run_id, environment)


class RunContext(Generic[R]):
    """Begin, keep each record, finish: ``with RunContext(...) as ctx: ctx.keep(record)``.

    Args:
        command: the command line (or API call) that started the run.
        store: where each record is committed at once (None: memory only).
        json_path: where the run's JSON goes on leaving (``-``: stdout).
        run_id: the run's id (a new one when None).
        join: an already stored run to add records to (``devicebench run`` adds its training
            comparison to the suite's run); its status is then left to its owner.
        document: builds the JSON document (the tuning run adds its own sections).

    The status on leaving is ``interrupted`` on KeyboardInterrupt, ``failed`` on any other
    exception, otherwise :attr:`status` if the caller set it, else ``failed`` when it kept
    records and every one of them failed, else ``complete``. The JSON is marked partial only
    when the run stopped early (interrupted or an exception).
    """

    def __init__(self, command: str, *, store: Store | None = None, json_path: str | Path | None = None,
                 run_id: str | None = None, join: RunInfo | None = None, document: Document | None = None) -> None:
        self.store = store
        self.json_path = json_path
        self.joined = join is not None
        self.run = join or RunInfo(run_id=run_id or new_run_id(), command=command, tool_version=__version__)
        self.records: list[R] = []
        self.status = "running"
        self._document = document or _default_document

    def __enter__(self) -> RunContext[R]:
        if self.store is not None and not self.joined:
            self.store.begin_run(self.run)
        return self

    def keep(self, record: R) -> None:
        """Keep ``record`` now: in memory and committed to the store (replacing a stored
        record with the same id, as a training record is rewritten after each epoch)."""
        self.records.append(record)
        adopt_environment(self.run, record.environment, self.store)
        if self.store is not None:
            self.store.put_record(record)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stopped_early = exc_type is not None
        if exc_type is not None:
            self.status = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
        elif self.status == "running":
            # A run whose every configuration failed answered nothing: it is not "complete".
            every_one_failed = bool(self.records) and not any(getattr(r, "ok", True) for r in self.records)
            self.status = "failed" if every_one_failed else "complete"
        self.run = replace(self.run, status=self.status, n_records=len(self.records))
        if self.store is not None and not self.joined:
            self.store.finish_run(self.run.run_id, self.status)
        if self.json_path is not None:
            partial = stopped_early or self.status not in ("complete", "failed")
            dump_json(self._document(self.run, self.records, partial), self.json_path)
