"""The Python API for notebooks and scripts: ``devicebench.compare`` and its results.

::

    import devicebench as db
    r = db.compare(model, torch.randn(1, 3, 224, 224), devices="all", batch_sizes=[1, 8])
    r               # the seed table (terminal: print(r); Jupyter: an HTML table)
    r.to_pandas()   # one row per configuration
    r.save()        # into the results database

How an ``nn.Module`` reaches the worker processes (``isolate=True``, the default): each
configuration is measured in a fresh process, so the module must travel as a file. It is
saved, in a private temporary folder, first as a ``torch.export`` program (the same ATen
operations as eager PyTorch, no Python class needed to load it, and no pickle); when the
model cannot be exported, as a pickle of the user's own object (only when its classes can
be imported by name in a fresh process: that file comes from this process, never from
elsewhere); last as a TorchScript trace. Which one was used is recorded in
``model_file["note"]``. ``isolate=False`` measures the module in this process instead
(faster to start; thread pools and allocator state are then shared with your session).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devicebench.errors import ConfigError, InputShapeError, UserError

if TYPE_CHECKING:
    import pandas
    import torch
    from rich.console import Console, ConsoleOptions, RenderResult
    from torch import nn

    from devicebench.measure.config import InferenceConfig
    from devicebench.results.records import InferenceRecord, RunInfo
    from devicebench.results.store import Store

__all__ = ["LlmResults", "PipelineResults", "Results", "ServingResults", "compare", "llm", "pipeline", "serve"]


@dataclass
class Results:
    """The records of one :func:`compare` run, ready to show, convert and keep.

    Attributes:
        run: what was run, when, where, and how it ended.
        records: one record per (device, batch size), failed ones included with their status.
        saved_to: databases this run was stored in.
    """

    run: RunInfo
    records: list[InferenceRecord]
    saved_to: list[Path] = field(default_factory=list)

    # -- showing ----------------------------------------------------------------------
    def table(self) -> Any:
        """Seed 000's table as a rich ``Table``."""
        from devicebench.reports.tables import seed_table

        return seed_table(self.records)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from devicebench.reports.tables import warnings_for

        yield self.table()
        for warning in warnings_for(self.records):
            yield f"[yellow]warning:[/] {warning}"

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(file=io.StringIO(), width=120, color_system=None, highlight=False)
        console.print(self)
        return console.file.getvalue()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<devicebench.Results run={self.run.run_id} status={self.run.status} records={len(self.records)}>"

    def _repr_html_(self) -> str:
        from devicebench.reports.notebook import seed_table_html

        return seed_table_html(self.records)

    def markdown(self) -> str:
        """The seed table as Markdown."""
        from devicebench.reports.tables import seed_table_markdown

        return seed_table_markdown(self.records)

    # -- converting -------------------------------------------------------------------
    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat dict per record (the rows of :meth:`to_pandas`)."""
        from devicebench.reports.notebook import record_rows

        return record_rows(self.records)

    def to_pandas(self) -> pandas.DataFrame:
        """A DataFrame with one row per configuration.

        Raises:
            UserError: pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise UserError("to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.to_dicts())

    def to_json(self, path: str | Path) -> Path:
        """Write the run as a devicebench JSON file (``devicebench show``/``load_results`` read it)."""
        from devicebench.results.jsonio import write_json

        write_json(path, self.run, self.records, partial=self.run.status != "complete")
        return Path(path)

    def save(self, db: str | Path | None = None) -> Path:
        """Store the run in a results database (default: ``$DEVICEBENCH_DB`` or the user
        data folder). Saving twice to one database is a no-op.

        Raises:
            StoreError: the database is corrupt or from a newer devicebench (left untouched).
        """
        from devicebench.errors import RunNotFoundError
        from devicebench.results.store import Store

        with Store(db) as store:
            try:
                store.find_run(self.run.run_id)
            except RunNotFoundError:
                store.begin_run(self.run)
                for record in self.records:
                    store.add_record(record)
                store.finish_run(self.run.run_id, self.run.status)
            path = store.path
        if path not in self.saved_to:
            self.saved_to.append(path)
        return path

    # -- a sequence of records --------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[InferenceRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> InferenceRecord:
        return self.records[index]

    @property
    def ok(self) -> bool:
        """Every configuration measured without error."""
        return bool(self.records) and all(r.ok for r in self.records)


# -- nn.Module -> a file a worker can load ----------------------------------------------

def _as_inputs(example: Any) -> tuple[torch.Tensor, ...]:
    import torch

    if isinstance(example, torch.Tensor):
        return (example.detach().cpu(),)
    if isinstance(example, (list, tuple)) and example and all(isinstance(t, torch.Tensor) for t in example):
        return tuple(t.detach().cpu() for t in example)
    raise InputShapeError("example_inputs must be a tensor or a tuple of tensors, batch first")


def _importable(module: nn.Module) -> bool:
    """Every class in the module tree can be found by name in a fresh process."""
    for sub in module.modules():
        cls = type(sub)
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            return False
        try:
            obj: Any = importlib.import_module(cls.__module__)
            for part in cls.__qualname__.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            return False
        if obj is not cls:
            return False
    return True


def _module_to_file(
    model: nn.Module, example: tuple[torch.Tensor, ...], folder: Path, dynamic_batch: bool
) -> tuple[Path, str, bool]:
    """Save ``model`` for the workers; returns (path, how, needs_trust_pickle).

    Raises:
        UserError: the model can be neither exported, pickled nor traced.
    """
    import torch

    errors: list[str] = []
    was_training = model.training
    model.eval()
    try:
        try:
            export_args = example
            shapes = None
            if dynamic_batch:
                if example[0].shape[0] == 1:  # export specialises size-1 dimensions
                    export_args = tuple(torch.cat([t, t]) for t in example)
                batch = torch.export.Dim("batch", min=1)
                shapes = tuple({0: batch} for _ in example)
            program = torch.export.export(model, export_args, dynamic_shapes=shapes)
            path = folder / "model.pt2"
            torch.export.save(program, str(path))
            return path, "nn.Module exported with torch.export (the same ATen operations as eager)", False
        except Exception as exc:  # noqa: BLE001 - export fails in many ways
            errors.append(f"torch.export: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}")
        if _importable(model):
            try:
                path = folder / "model.pkl.pt"
                torch.save(model, path)
                return path, "nn.Module pickled in this process (its classes are importable)", True
            except Exception as exc:  # noqa: BLE001
                errors.append(f"pickle: {exc}")
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(model, example)
                path = folder / "model.ts"
                torch.jit.save(traced, str(path))
            return path, "nn.Module traced with TorchScript", False
        except Exception as exc:  # noqa: BLE001
            errors.append(f"TorchScript trace: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}")
    finally:
        model.train(was_training)
    raise UserError(
        "cannot send this module to a worker process (" + "; ".join(errors) + "): "
        "use compare(..., isolate=False) to measure it in this process"
    )


@dataclass(frozen=True)
class _TensorInput:
    """Fixed example tensors, rows repeated to fill the batch (for in-process runs)."""

    tensors: tuple[Any, ...]

    def example(self, batch_size: int, seed: int = 0) -> tuple[Any, ...]:
        out = []
        for t in self.tensors:
            reps = -(-batch_size // t.shape[0])
            out.append(t.repeat(reps, *([1] * (t.dim() - 1)))[:batch_size].contiguous())
        return tuple(out)

    def shapes(self, batch_size: int) -> list[list[int]]:
        return [[batch_size, *t.shape[1:]] for t in self.tensors]

    @property
    def source(self) -> str:
        return "example_inputs given to compare(), rows repeated to fill the batch"


def _in_process_measure(model: nn.Module, name: str, example: tuple[torch.Tensor, ...]) -> Callable[[str, InferenceConfig], InferenceRecord]:
    def measure(run_id: str, config: InferenceConfig) -> InferenceRecord:
        import torch

        from devicebench.measure.inference import measure_inference
        from devicebench.results.records import InferenceRecord
        from devicebench.workloads.registry import Workload

        def factory(cfg: InferenceConfig) -> Workload:
            module = copy.deepcopy(model).cpu()  # never move or cast the caller's own module
            return Workload(
                name=name, module=module, input=_TensorInput(example), task="nn.Module (in process)",
                weights="in-memory module", parameters=sum(p.numel() for p in module.parameters()),
                model_file={"path": None, "format": "nn.Module", "note": "measured in the calling process (isolate=False)"},
            )

        threads = torch.get_num_threads()
        try:
            return InferenceRecord.from_outcome(run_id, config, measure_inference(config, workload_factory=factory))
        finally:
            torch.set_num_threads(threads)  # leave the caller's thread pool as it was

    return measure


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


class _TextProgress:
    """Progress of a :func:`compare` run as one line of text per event."""

    def __init__(self, write: Callable[[str], None]) -> None:
        from devicebench.reports.progress import RunEstimate

        self._write = write
        self._estimate = RunEstimate(0)

    def plan(self, configs: Sequence[InferenceConfig]) -> None:
        from devicebench.reports.progress import RunEstimate

        self._estimate = RunEstimate(len(configs))
        self._write(f"measuring {len(configs)} configuration{'s' if len(configs) != 1 else ''}, "
                    "each in a fresh process")

    def _line(self, index: int, label: str, what: str) -> None:
        from devicebench.reports.progress import run_line

        self._write(run_line(index, self._estimate.planned, label, what, self._estimate))

    def started(self, index: int, config: InferenceConfig) -> None:
        self._estimate.start()
        self._line(index, config.label(), "starting")

    def progress(self, index: int, config: InferenceConfig, report: Any) -> None:
        from devicebench.reports.progress import progress_text

        self._line(index, config.label(), progress_text(report))

    def finished(self, index: int, record: InferenceRecord) -> None:
        from devicebench.reports.tables import fmt_ms

        self._estimate.finish()
        lat = record.user_latency
        what = f"done, {fmt_ms(lat.median)}" if record.ok and lat else record.status
        self._line(index, f"{record.model} {record.device.label} b{record.batch_size}", what)


def _progress_sink(progress: bool | Callable[[str], None] | None) -> _TextProgress | None:
    """Where compare()'s progress lines go (see its ``progress`` argument)."""
    if callable(progress):
        return _TextProgress(progress)
    if progress is False or (progress is None and not _in_ipython()):
        return None
    if _in_ipython():
        from IPython.display import display

        handle = display({"text/plain": "devicebench: starting"}, raw=True, display_id=True)

        def update(line: str) -> None:
            handle.update({"text/plain": line}, raw=True)

        return _TextProgress(update)
    import sys

    return _TextProgress(lambda line: print(line, file=sys.stderr, flush=True))


@contextlib.contextmanager
def _optional_store(db: str | Path | None) -> Iterator[Store | None]:
    """The results database at ``db`` (closed on leaving), or None without one."""
    from devicebench.results.store import Store

    store = Store(db) if db is not None else None
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def _saved_to(store: Store | None) -> list[Path]:
    return [store.path] if store is not None else []


def _each_record(on_record: Callable[[Any], None] | None) -> Callable[[int, Any], None] | None:
    """``on_record(record)`` as the runners call it (with the record's index), or None."""
    return (lambda i, r: on_record(r)) if on_record is not None else None


def compare(
    model: nn.Module | str | Path,
    example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    devices: str | Sequence[str] = "all",
    batch_sizes: Sequence[int] | None = None,
    precision: str = "fp32",
    threads: int | None = None,
    quick: bool = False,
    max_time: float | None = None,
    isolate: bool = True,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
    input_dtype: str | None = None,
    arch: str | None = None,
    trust_pickle: bool = False,
    name: str | None = None,
    db: str | Path | None = None,
    json_path: str | Path | None = None,
    on_record: Callable[[InferenceRecord], None] | None = None,
    progress: bool | Callable[[str], None] | None = None,
) -> Results:
    """Time a model on each device (and batch size) and compare them with the CPU.

    Args:
        model: an ``nn.Module``, a registered model name, or a model file or folder
            (TorchScript, torch.export ``.pt2``, ONNX, Hugging Face folder, state dict with
            ``arch``; see docs/own-models.md).
        example_inputs: a tensor or tuple of tensors, batch first. Needed for an
            ``nn.Module`` unless ``input_shape`` is given; for a file, optional (the file's
            own shapes are used where it records them).
        devices: ``"all"``, ``"cpu"``, ``"cpu,cuda"`` or a list of device strings.
        batch_sizes: batch sizes to sweep (default: the first dimension of the inputs).
        precision: ``fp32``, ``fp16`` or ``bf16``.
        threads: CPU intra-op threads (torch's default when ``None``; recorded).
        quick: a warm-up of at most 3 s, then at most 3 s of timed calls per loop (the
            model's build and first call come on top).
        max_time: cap on the measuring time of each configuration, seconds.
        isolate: measure each configuration in a fresh process (default). ``False``
            measures an ``nn.Module`` in this process.
        input_shape: a shape (or one per input) to make random inputs from.
        input_dtype: dtype of those inputs (``float32``, ``int64``...).
        arch: registered architecture of a weights-only file.
        trust_pickle: allow a file that is a whole pickled module (runs its code).
        name: the model's name in the results (default: class or file name).
        db: also store each record in this results database as it is measured.
        json_path: also write the run as JSON here.
        on_record: called with each record as soon as it is measured.
        progress: one line of progress per event (configuration started, a worker's report
            at most once a second, configuration done), with the planned number of
            configurations and the time left: ``None`` (default) shows it in IPython/Jupyter
            as one line updated in place and stays silent elsewhere; ``True`` shows it
            there or on stderr; ``False`` never; a callable receives each line instead.

    Returns:
        The results: print them, show them in Jupyter, ``.to_pandas()``, ``.save()``.

    Raises:
        UserError: unknown model, unreadable or unsafe file, bad shape, unavailable device,
            unusable database (each with a message that says what to do).
        KeyboardInterrupt: Ctrl-C; the finished records are already in ``db`` and
            ``json_path`` (marked partial).
    """
    from dataclasses import replace

    from torch import nn

    from devicebench.devices.discovery import parse_devices
    from devicebench.measure.config import DEFAULT_POLICY, QUICK_POLICY, InferenceConfig
    from devicebench.results.store import Store
    from devicebench.run.inference import execute, plan_inference, plan_user_model
    from devicebench.workloads.registry import list_models
    from devicebench.workloads.userfile import UserModelSpec, parse_shape

    specs = parse_devices(devices if isinstance(devices, str) else list(devices))
    policy = QUICK_POLICY if quick else DEFAULT_POLICY
    if max_time is not None:
        policy = replace(policy, max_time_s=max_time, min_time_s=min(policy.min_time_s, max_time))
    shapes: tuple[tuple[int, ...], ...] | None = None
    if input_shape is not None:
        text = ";".join(",".join(str(d) for d in s) for s in input_shape) if input_shape and not isinstance(input_shape[0], int) \
            else ",".join(str(d) for d in input_shape)  # type: ignore[union-attr]
        shapes = parse_shape(text)

    show = _progress_sink(progress)

    def report(index: int, record: InferenceRecord) -> None:
        if show is not None:
            show.finished(index, record)
        if on_record is not None:
            on_record(record)

    store = Store(db) if db is not None else None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    measure = None
    try:
        if isinstance(model, nn.Module):
            import torch

            if example_inputs is not None:
                example = _as_inputs(example_inputs)
            elif shapes is not None:
                from devicebench.workloads.userfile import INPUT_DTYPES

                dtype = INPUT_DTYPES.get(input_dtype or "float32")
                if dtype is None:
                    raise InputShapeError(f"unknown input dtype {input_dtype!r}")
                gen = torch.Generator().manual_seed(0)
                example = tuple((torch.randn(s, generator=gen) if dtype.is_floating_point else torch.zeros(s)).to(dtype) for s in shapes)
            else:
                raise InputShapeError("compare(module) needs example_inputs (a tensor, batch first) or input_shape")
            label = name or type(model).__name__
            sizes = tuple(batch_sizes) if batch_sizes else (example[0].shape[0],)
            if isolate:
                tmp = tempfile.TemporaryDirectory(prefix="devicebench-module-")
                folder = Path(tmp.name)
                dynamic = any(b != example[0].shape[0] for b in sizes)
                source = model if not any(p.device.type != "cpu" for p in model.parameters()) else copy.deepcopy(model).cpu()
                path, how, trusted = _module_to_file(source, example, folder, dynamic)
                torch.save(example, folder / "inputs.pt")
                spec = UserModelSpec(path=str(path), trust_pickle=trusted, input_files=(str(folder / "inputs.pt"),))
                configs = plan_user_model(spec, specs, sizes, precision=precision, threads=threads, policy=policy)
                shown = f"<in-memory {type(model).__name__}>"
                configs = [replace(c, model=label, user_model=replace(c.user_model, note=how, display_path=shown))  # type: ignore[arg-type]
                           for c in configs]
            else:
                configs = [
                    InferenceConfig(model=label, device=d, batch_size=b, precision=precision,
                                    threads=threads if d.type == "cpu" else None, policy=policy)
                    for d in specs for b in sizes
                ]
                measure = _in_process_measure(model, label, example)
        else:
            text = str(model)
            if text in {e.name for e in list_models()}:
                if arch or trust_pickle or shapes or example_inputs is not None:
                    raise ConfigError(f"{text!r} is a registered model: arch/trust_pickle/inputs apply to model files")
                configs = plan_inference([text], specs, batch_sizes, precision=precision, threads=threads, policy=policy)
            else:
                input_files = None
                if example_inputs is not None:
                    import torch

                    tmp = tempfile.TemporaryDirectory(prefix="devicebench-inputs-")
                    torch.save(_as_inputs(example_inputs), Path(tmp.name) / "inputs.pt")
                    input_files = (str(Path(tmp.name) / "inputs.pt"),)
                spec = UserModelSpec(path=text, arch=arch, trust_pickle=trust_pickle, input_shapes=shapes,
                                     input_dtypes=(input_dtype,) if input_dtype else None, input_files=input_files)
                configs = plan_user_model(spec, specs, batch_sizes, precision=precision, threads=threads, policy=policy)
                if name:
                    configs = [replace(c, model=name) for c in configs]
        label = configs[0].model if configs else str(model)
        if show is not None:
            show.plan(configs)
        run, records = execute(configs, command=f"api compare {label}", store=store, json_path=json_path,
                               on_record=report, measure=measure,
                               on_start=show.started if show is not None else None,
                               on_progress=show.progress if show is not None else None)
        return Results(run=run, records=records, saved_to=[store.path] if store is not None else [])
    finally:
        if store is not None:
            store.close()
        if tmp is not None:
            tmp.cleanup()


# -- LLMs (issue 15) ------------------------------------------------------------------------


@dataclass
class LlmResults(Results):
    """The records of one :func:`llm` run: the same results object as :func:`compare`'s, its
    tables the LLM ones (prefill and decode apart) and its rows one per configuration."""

    records: list[Any] = field(default_factory=list)  # LlmRecord

    def table(self) -> Any:
        """The decode seed table (model | CPU tok/s | GPU tok/s | speedup) as a rich ``Table``."""
        from devicebench.reports.llm import llm_seed_table

        return llm_seed_table(self.records, "decode")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from devicebench.reports.llm import llm_seed_table, llm_warnings

        yield llm_seed_table(self.records, "prefill")
        yield llm_seed_table(self.records, "decode")
        for warning in llm_warnings(self.records):
            yield f"[yellow]warning:[/] {warning}"

    def _repr_html_(self) -> str:
        from devicebench.reports.llm import llm_html_section

        return llm_html_section(self.records)

    def markdown(self) -> str:
        from devicebench.reports.llm import llm_seed_markdown

        return llm_seed_markdown(self.records)

    def llama_bench(self, fmt: str = "json") -> str:
        """The records in llama-bench's output format (``md``, ``csv``, ``json``, ``jsonl``)."""
        from devicebench.reports.llm import llama_bench_output

        return llama_bench_output(self.records, fmt)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat dict per configuration and phase: llama-bench's fields and devicebench's."""
        from devicebench.reports.llm import llama_bench_rows

        return llama_bench_rows(self.records)

    def __repr__(self) -> str:
        return f"<devicebench.LlmResults run={self.run.run_id} status={self.run.status} records={len(self.records)}>"


def llm(
    model: str | Path,
    *,
    devices: str | Sequence[str] = "all",
    prompt: int = 512,
    gen: int = 128,
    batch: int = 1,
    precision: str = "fp32",
    variants: Sequence[str] = ("sdpa",),
    repetitions: int = 5,
    threads: int | None = None,
    tune: bool = False,
    parity: bool = True,
    db: str | Path | None = None,
    json_path: str | Path | None = None,
    on_record: Callable[[Any], None] | None = None,
) -> LlmResults:
    """Measure LLM generation on each device: prefill and decode tokens/s, TTFT, per-token
    latency, the answer against CPU fp32, bandwidth share, energy (docs/llm.md).

    Args:
        model: a registered LLM (``qwen2.5-0.5b``, ``llama-3.2-1b``, ``-tiny`` variants) or
            a Hugging Face causal-LM folder (safetensors, no remote code).
        devices: ``"all"``, ``"cpu"``, ``"cpu,cuda"`` or a list.
        prompt, gen, batch: prompt tokens, new tokens (exactly), sequences.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        variants: ``eager``, ``sdpa``, ``static``, ``static-compile``, ``int8-dynamic``, ``packed``.
        repetitions: timed repetitions per configuration.
        threads: CPU threads.
        tune: try each device's candidates and mark its best passing one.
        parity: compare with the CPU fp32 reference.
        db: store each record in this database as it is measured.
        json_path: also write the run as JSON here.
        on_record: called with each record as soon as it is measured.

    Raises:
        UserError: unknown model, a folder that is not a causal LM, a prompt + gen longer
            than the model's context, an unavailable device.
    """
    from devicebench.devices.discovery import parse_devices
    from devicebench.run.llm import LlmRequest, execute_llm, plan_llm

    request = LlmRequest(model=str(model), devices=tuple(parse_devices(devices if isinstance(devices, str) else list(devices))),
                         prompt=prompt, gen=gen, batch=batch, precision=precision, variants=tuple(variants),
                         repetitions=repetitions, threads=threads, parity=parity, tune=tune)
    plan = plan_llm(request)
    with _optional_store(db) as store:
        run, records = execute_llm(plan, command=f"api llm {model}", store=store, json_path=json_path, tune=tune,
                                   on_record=_each_record(on_record))
    return LlmResults(run=run, records=records, saved_to=_saved_to(store))


# -- serving and pipelines (issue 16) ---------------------------------------------------------


@dataclass
class ServingResults(Results):
    """The records of one :func:`serve` run (one per device): the rate under the target, the
    trials of the search, cost per million requests and energy per request (docs/serving.md).

    Attributes:
        prices: the price table applied to the cost column (default: the dated defaults).
    """

    records: list[Any] = field(default_factory=list)  # ServingRecord
    prices: Any = None  # reports.cost.Prices

    def _prices(self) -> Any:
        from devicebench.reports.cost import Prices

        return self.prices if self.prices is not None else Prices()

    def table(self) -> Any:
        """The serving table (the answer per device, cost, energy, generator slip) as a rich ``Table``."""
        from devicebench.reports.serving import serving_table

        return serving_table(self.records, self._prices())

    def trials_tables(self) -> list[Any]:
        """Each server search, trial by trial (the p99 against offered rate curve as numbers)."""
        from devicebench.reports.serving import trials_table

        return [trials_table(r) for r in self.records if r.trials]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table()
        yield from self.trials_tables()
        for r in self.records:
            if r.search_note:
                yield f"note ({r.device.label}): {r.search_note}"
            for warning in r.warnings:
                yield f"[yellow]warning:[/] ({r.device.label}) {warning}"

    def _repr_html_(self) -> str:
        from devicebench.reports.serving import serving_html

        return serving_html(self.run, self.records, [], self._prices())

    def markdown(self) -> str:
        from devicebench.reports.serving import serving_markdown

        return serving_markdown(self.records, self._prices())

    def to_dicts(self) -> list[dict[str, Any]]:
        """One row per device: rate, target, p99 at the rate, cost, energy, slip, warnings."""
        from devicebench.reports.serving import serving_rows

        return serving_rows(self.records, self._prices())

    @property
    def max_rate(self) -> dict[str, float | None]:
        """The rate found per device label (server scenario; ``None`` where none was found)."""
        return {r.device.label: r.max_rate for r in self.records}

    def __repr__(self) -> str:
        return f"<devicebench.ServingResults run={self.run.run_id} status={self.run.status} records={len(self.records)}>"


@dataclass
class PipelineResults(Results):
    """The records of one :func:`pipeline` run: every stage timed apart per split, the
    bottleneck named, the split to use, and the GPU's speedup with and without decoding."""

    records: list[Any] = field(default_factory=list)  # PipelineRecord

    def table(self) -> Any:
        from devicebench.reports.serving import pipeline_table

        return pipeline_table(self.records)

    def headline(self) -> list[str]:
        """The split to use per device; the GPU's speedup on the model alone and end to end."""
        from devicebench.reports.serving import pipeline_headline

        return pipeline_headline(self.records)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table()
        yield from self.headline()

    def _repr_html_(self) -> str:
        from devicebench.reports.cost import Prices
        from devicebench.reports.serving import serving_html

        return serving_html(self.run, [], self.records, Prices())

    def markdown(self) -> str:
        """The splits table and the headline as Markdown."""
        from devicebench.reports.serving import pipeline_markdown

        return pipeline_markdown(self.records)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One row per (device, split): items/s end to end and ms per item for each stage."""
        from devicebench.reports.serving import pipeline_rows

        return pipeline_rows(self.records)

    def __repr__(self) -> str:
        return f"<devicebench.PipelineResults run={self.run.run_id} status={self.run.status} records={len(self.records)}>"


def serve(
    model: str,
    *,
    devices: str | Sequence[str] = "all",
    scenario: str = "server",
    slo: str = "p99=15ms",
    max_batch: int = 1,
    max_delay_ms: float = 0.0,
    duration_s: float = 10.0,
    concurrency: Sequence[int] = (1, 2, 4, 8),
    offline_max_batch: int = 64,
    threads: int | None = None,
    precision: str = "fp32",
    seed: int = 0,
    quick: bool = False,
    prices: Any = None,
    db: str | Path | None = None,
    json_path: str | Path | None = None,
    on_record: Callable[[Any], None] | None = None,
    isolate: bool = True,
) -> ServingResults:
    """Serve a registered model under load on each device, each in a fresh worker process:
    what ``devicebench serve`` runs (docs/serving.md).

    Args:
        model: a registered model (``resnet50``, ``bert-base``, ``-tiny`` variants...).
        devices: ``"all"``, ``"cpu"``, ``"cpu,cuda"`` or a list.
        scenario: ``server`` (open-loop Poisson, the highest rate whose percentile stays
            under ``slo``), ``single-stream``, ``offline`` or ``concurrency``.
        slo: the latency target, like ``"p99=15ms"``.
        max_batch, max_delay_ms: dynamic batching.
        duration_s: seconds of schedule per trial (stretched to 100 requests, up to 3x).
        concurrency: the concurrency scenario's sweep.
        offline_max_batch: the offline scenario's largest batch.
        threads: CPU intra-op threads (leave a core for the load generator).
        precision: ``fp32``, ``fp16`` or ``bf16``.
        seed: of the Poisson schedule and the inputs.
        quick: 2 s trials, at most 6.
        prices: a ``reports.cost.Prices`` for the cost column (default: the dated table).
        db: store each record in this database as it is measured.
        json_path: also write the run as JSON here.
        on_record: called with each record as soon as it is measured.
        isolate: each device in a fresh worker process (default); ``False`` serves in this
            process (faster to start; the generator thread then shares your session).

    Raises:
        UserError: unknown model or device; ConfigError: a bad scenario, target or number.
        A target below a device's single-request latency is not raised: that device's
        record has status ``infeasible`` and says so.
    """
    from devicebench.run.serving import plan_serve
    from devicebench.run.serving import serve as run_serve

    configs = plan_serve(model, devices, scenario=scenario, slo=slo, max_batch=max_batch, max_delay_ms=max_delay_ms,
                         duration_s=duration_s, concurrency=concurrency, offline_max_batch=offline_max_batch,
                         threads=threads, precision=precision, seed=seed, quick=quick)
    with _optional_store(db) as store:
        run, records = run_serve(configs, command=f"api serve {model}", store=store, json_path=json_path,
                                 in_process=not isolate, on_record=_each_record(on_record))
    return ServingResults(run=run, records=records, saved_to=_saved_to(store), prices=prices)


def pipeline(
    model: str,
    *,
    devices: str | Sequence[str] = "all",
    images: str | Path = "synthetic",
    decode: str = "auto",
    workers: Sequence[int] = (0, 2, 4),
    batch_size: int = 8,
    items: int = 64,
    threads: int | None = None,
    db: str | Path | None = None,
    json_path: str | Path | None = None,
    on_record: Callable[[Any], None] | None = None,
    isolate: bool = True,
) -> PipelineResults:
    """JPEG files (or text) to answers on each model device, every stage timed apart: what
    ``devicebench pipeline`` runs (docs/serving.md).

    Args:
        model: a registered image model (``resnet50``...) or text model (``bert-base``...).
        devices: where the model runs: ``"all"``, ``"cpu"``, ``"cpu,cuda"`` or a list.
        images: a folder of ``.jpg`` files (read only; links and other files skipped) or
            ``"synthetic"``.
        decode: ``cpu``, ``gpu`` or ``auto`` (both where the model is on a GPU).
        workers: DataLoader worker counts for CPU decoding.
        batch_size, items: items per batch, and per split.
        threads: CPU intra-op threads of the model.
        db, json_path, on_record, isolate: as in :func:`serve`.

    Raises:
        UserError: unknown model or device; ConfigError: bad ``decode``/``workers``, images
        for a text model; DatasetError: a folder without JPEG files.
    """
    from devicebench.run.serving import pipeline as run_pipeline
    from devicebench.run.serving import plan_pipeline

    configs = plan_pipeline(model, devices, images=images, decode=decode, workers=workers, batch_size=batch_size,
                            items=items, threads=threads)
    with _optional_store(db) as store:
        run, records = run_pipeline(configs, command=f"api pipeline {model}", store=store, json_path=json_path,
                                    in_process=not isolate, on_record=_each_record(on_record))
    return PipelineResults(run=run, records=records, saved_to=_saved_to(store))
