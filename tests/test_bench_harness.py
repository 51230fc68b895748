"""``benchmarks/run.py --quick``: every target of issue 17 printed once with a verdict, machine and date."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(os.path.dirname(HERE), "benchmarks", "run.py")

#: target key -> the peer it needs (None: dojob alone)
TARGETS = {
    "api-run-mid": None,
    "api-run-big": None,
    "dojobber-run": "dojobber",
    "dojobber-api": "dojobber",
    "run-floor": None,
    "run-scaling": None,
    "api-scaling": None,
    "aio-asynciojobs": "asynciojobs",
    "luigi": "luigi",
    "doit": "doit",
    "io-critical": None,
    "import": None,
    "import-run": None,
    "cli-one-job": None,
    "mem-run": None,
    "mem-api": None,
}

LINE = re.compile(r"^  (met|missed|unmeasured)\s+(\S+)\s+(\S+(?: ms)?)\s+target ([<>]=) ")


def test_quick_run_prints_a_verdict_per_target(tmp_path) -> None:
    record = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, RUN, "--quick", "--json", str(record)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(HERE),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    verdicts: dict[str, tuple[str, str]] = {}
    for line in lines:
        match = LINE.match(line)
        if match:
            verdict, key, value = match.group(1), match.group(2), match.group(3)
            assert key not in verdicts, f"target {key} printed twice"
            verdicts[key] = (verdict, value)
    assert sorted(verdicts) == sorted(TARGETS), proc.stdout
    for key, peer in TARGETS.items():
        verdict, value = verdicts[key]
        installed = peer is None or importlib.util.find_spec(peer) is not None
        if installed:
            # measured: a number, and a real verdict
            assert verdict in ("met", "missed"), (key, verdict, proc.stdout)
            assert re.fullmatch(r"[0-9.]+(x| ms)?", value), (key, value)
        else:
            assert verdict == "unmeasured" and value == "-", (key, verdict)
    met = sum(1 for v, _ in verdicts.values() if v == "met")
    assert any(line.startswith(f"{met}/{len(TARGETS)} targets met") for line in lines), proc.stdout
    assert any(line.startswith("machine: ") and "CPUs" in line and "Python 3." in line for line in lines)
    assert any(re.match(r"date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", line) for line in lines)
    # every figure comes from a fresh child: the interpreter's start-up and the CLI's wall time are there
    assert any("python -c pass" in line for line in lines)
    assert any("dojob run onejob.py:Hello" in line for line in lines)
    # the same verdicts, and every figure behind them, in the JSON record
    saved = json.loads(record.read_text())
    assert {t["key"]: t["verdict"] for t in saved["targets"]} == {k: v for k, (v, _) in verdicts.items()}
    assert all(len(saved["samples"][key]) == 1 for key in ("run:100", "api:2000", "floor:2000", "import", "cli"))


def test_a_missing_peer_is_unmeasured_and_says_how_to_install_it(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("dojob_bench_run", RUN)
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = harness  # dataclasses look their module up
    spec.loader.exec_module(harness)
    hidden = tmp_path / "hide"
    (hidden / "luigi").mkdir(parents=True)
    (hidden / "luigi" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'luigi'\", name='luigi')\n"
    )
    env = harness.child_env(str(tmp_path / "pycache"))
    env["PYTHONPATH"] = os.pathsep.join((str(hidden), env["PYTHONPATH"]))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    logged: list[str] = []
    h = harness.Harness(env, log=logged.append, cwd=str(cwd))
    h.child("luigi", "luigi", 20)
    h.child("luigi", "luigi", 20)  # not tried again
    h.child("run:20", "cpu", "run", 20)
    assert "luigi" not in h.samples and "pip install 'dojob[bench]'" in h.errors["luigi"]
    assert len(logged) == 1 and "luigi" in logged[0]
    assert h.samples["run:20"][0]["first"] > 0
    target = harness.Target("luigi", "Luigi / dojob.run", None, 10, True, why=h.why("luigi"))
    assert target.verdict == "unmeasured"
    assert target.line().split()[:3] == ["unmeasured", "luigi", "-"] and "No module named 'luigi'" in target.line()
