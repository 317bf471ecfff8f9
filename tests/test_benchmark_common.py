"""benchmarks/_common.py: running a recipe command and what each run's JSON records about it."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _common  # noqa: E402


def test_run_recipe_command_records_the_command_a_user_types_and_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    out = str(tmp_path / "scratch_out")
    script = "import os, sys; open(sys.argv[2], 'w').write(os.environ['OMP_NUM_THREADS'])"
    cmd = [sys.executable, "-c", script, "--judge", str(tmp_path / "j"), out]
    record = _common.run_recipe_command(
        [sys.executable, "-c", script, out, out], tmp_path, out, masks={str(tmp_path / "j"): "<judge_dir>"}
    )
    assert Path(out).read_text() == "1"  # one OpenMP thread unless the caller's environment says otherwise
    assert record["command"] == f"python -c {script} <output_dir> <output_dir>"
    assert record["wall_seconds"] >= 0 and "OMP_NUM_THREADS=1" in record["machine"] and record["date"].endswith("UTC")
    masked = _common.run_recipe_command([*cmd[:2], "pass", *cmd[3:]], tmp_path, out, masks={str(tmp_path / "j"): "<judge_dir>"})
    assert masked["command"] == "python -c pass --judge <judge_dir> <output_dir>"
    with pytest.raises(subprocess.CalledProcessError):
        _common.run_recipe_command([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, out)
