"""`devicebench infer --tune` end to end: workers, JSON, cache reuse, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from devicebench.cli import build_parser, main


def test_tune_writes_candidates_parity_and_the_cache(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "tuned.json"
    args = ("infer", "tinycnn-tiny", "--device", "cpu", "--tune", "--quick", "--candidates", "channels_last fp32",
            "--top", "1", "--min-time", "0.1", "--max-time", "0.3")
    first = run_cli(*args, "--json", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    assert "The answer twice" in first.stdout and "no GPU" in first.stdout
    assert "Parity vs" in first.stdout and "[measured]" in first.stdout  # the header wraps at 80 columns
    doc = json.loads(out.read_text())
    (tuning,) = doc["tuning"]
    assert tuning["source"] == "measured"
    statuses = {c["name"]: c["status"] for c in tuning["candidates"]}
    assert set(statuses) == {"eager fp32", "channels_last fp32"}
    assert statuses["eager fp32"] in ("ok", "winner")
    roles = [r["tuning"]["role"] for r in doc["records"]]
    assert roles == ["naive", "best"]
    assert all("variant" in r and r["parity"]["passed"] for r in doc["records"])
    assert doc["seed000"][0]["cpu_naive_ms"] > 0
    cache = json.loads((tmp_path / "tuning-cache.json").read_text())  # beside the results database
    (entry,) = cache["entries"].values()
    assert entry["candidate"]["variant"] == tuning["winner"].split()[0]
    # Reuse and --retune run the same code in process: tests/unit/test_tuning.py (a second
    # CLI run here would cost ~30 s of worker start-ups on a 2-core machine).


def test_unknown_candidate_is_a_one_line_error(capsys, tmp_path: Path) -> None:
    # In process: the name is refused before any worker starts.
    code = main(["infer", "tinycnn-tiny", "--device", "cpu", "--tune", "--candidates", "warp-drive",
                 "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown tuning feature 'warp-drive'" in err and "Traceback" not in err


def test_run_accepts_tune_flags() -> None:
    args = build_parser().parse_args(["run", "--tune", "--retune", "--quick"])
    assert args.tune and args.retune
    args = build_parser().parse_args(["infer", "resnet50", "--crossover", "--batch-size", "1,2,4"])
    assert args.crossover and args.batch_size == [1, 2, 4]
