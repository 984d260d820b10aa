"""Stage 4: result records (raw samples kept), JSON files, and the SQLite store."""

from devicebench.results.records import (
    SCHEMA_VERSION,
    DeviceRef,
    InferenceRecord,
    RunInfo,
    new_run_id,
)
from devicebench.results.parts import EnergyUse, SustainedRun, TimingInfo, TransferTimes, TuningInfo
from devicebench.results.jsonio import read_json, write_json
from devicebench.results.store import Store, default_db_path

__all__ = [
    "SCHEMA_VERSION",
    "DeviceRef",
    "InferenceRecord",
    "RunInfo",
    "EnergyUse",
    "SustainedRun",
    "TimingInfo",
    "TransferTimes",
    "TuningInfo",
    "new_run_id",
    "read_json",
    "write_json",
    "Store",
    "default_db_path",
]
