"""``--metrics``: the loop's Prometheus endpoint, scraped over HTTP and read with prometheus_client's own parser."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from reconciling import Proc, env_for, write

from dojob.metrics import Metrics, parse_address

SITE = """\
    import os
    import dojob

    class Dir(dojob.Job):
        def Check(self, *args, **kwargs):
            assert os.path.isdir("out"), "no out/"

        def Run(self, *args, **kwargs):
            os.mkdir("out")

    class Motd(dojob.Job):
        DEPS = [Dir]

        def Check(self, *args, **kwargs):
            assert os.path.exists("out/motd"), "no out/motd"

        def Run(self, *args, **kwargs):
            open("out/motd", "w").close()

    class Broken(dojob.Job):
        TRIES = 2
        RETRY_DELAY = 0

        def Check(self, *args, **kwargs):
            if os.path.exists("broken"):
                raise RuntimeError("broken")

        def Run(self, *args, **kwargs):
            pass

    Weird = type('we"ird\\\\job\\nname', (dojob.DummyJob,), {"DEPS": [Motd]})

    class Root(dojob.DummyJob):
        DEPS = [Weird, Broken]
"""


def scrape(url: str) -> dict[str, list]:
    """name -> samples of every metric family at ``url``, parsed by prometheus_client."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode("utf-8")
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(families: dict, sample: str, **labels: str) -> float:
    for family in families.values():
        for s in family:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {sample}{labels}")


def test_the_endpoint_serves_what_the_loop_did(tmp_path):
    write(tmp_path / "site.py", SITE)
    with Proc("run", "site.py:Root", "--every", "1s", "--metrics", "127.0.0.1:0", cwd=tmp_path) as p:
        url = p.wait_for(r"^dojob: metrics at (http://127\.0\.0\.1:\d+/metrics)$", stream="err").group(1)
        p.wait_for(r"^run 2 ")
        (tmp_path / "out" / "motd").unlink()  # drift, seen by run 3
        (tmp_path / "broken").touch()  # and a failure
        t_broken = time.time()
        p.wait_for(r"^run 3 ")
        families = scrape(url)
        p.signal(signal.SIGTERM)
        assert p.finish() == 143
    assert value(families, "dojob_runs_total", verdict="converged") == 2
    assert value(families, "dojob_runs_total", verdict="not_converged") == 1
    assert value(families, "dojob_runs_total", verdict="interrupted") == 0
    assert value(families, "dojob_last_run_verdict", dojob_last_run_verdict="not_converged") == 1
    assert value(families, "dojob_last_run_verdict", dojob_last_run_verdict="converged") == 0
    start = value(families, "dojob_last_run_start_timestamp_seconds")
    end = value(families, "dojob_last_run_end_timestamp_seconds")
    converged = value(families, "dojob_last_converged_timestamp_seconds")
    assert converged < t_broken <= start <= end <= time.time()
    assert value(families, "dojob_run_in_progress") == 0
    weird = 'we"ird\\job\nname'  # escaped on the wire, whole again after parsing
    for job, status in [("Motd", "changed"), ("Dir", "ok"), ("Broken", "failed"), (weird, "ok")]:
        assert value(families, "dojob_job_status", job=job, dojob_job_status=status) == 1, job
        assert value(families, "dojob_job_status", job=job, dojob_job_status="pending") == 0
    assert value(families, "dojob_job_tries", job="Broken") == 2
    assert value(families, "dojob_job_tries", job="Motd") == 1
    assert value(families, "dojob_job_status", job="Root", dojob_job_status="blocked") == 1
    # tries: run 1: Dir, Motd, Broken, Weird, Root (5); run 2: 5; run 3: Broken twice, Root none (5)
    assert value(families, "dojob_try_duration_seconds_count") == 15
    assert value(families, "dojob_try_duration_seconds_bucket", le="+Inf") == 15
    assert value(families, "dojob_drift_total", job="Motd") == 1
    assert value(families, "dojob_drift_total", job="Broken") == 1  # it had converged, now it fails
    assert "dojob_flap" in families  # fed by the history store's hook; no flap yet
    assert value(families, "dojob_reloads_total", result="ok") == 0


def test_a_port_in_use_is_a_usage_error(tmp_path):
    write(tmp_path / "site.py", SITE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "dojob", "run", "site.py:Root", "--every", "1s", "--metrics", f":{port}"],
            cwd=tmp_path,
            env=env_for(tmp_path),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 2, out
    assert f"--metrics 127.0.0.1:{port}: cannot listen: " in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        (":9100", ("127.0.0.1", 9100)),
        ("9100", ("127.0.0.1", 9100)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9100", ("::1", 9100)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_addresses(text, address):
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "host:", "a:b", "::1:9100", "1:2:3", "x:70000", "h o:1", "[::1]"])
def test_bad_addresses(text):
    with pytest.raises(Exception, match="--metrics"):
        parse_address(text)


def test_the_drift_and_flap_hook_is_what_a_history_store_calls():
    metrics = Metrics()
    metrics.record_drift(["A", "A", "B"])
    metrics.record_flap(["A"])
    metrics.record_flap([])
    metrics.reloaded(False)
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics.text())}
    assert value(families, "dojob_drift_total", job="A") == 2
    assert value(families, "dojob_drift_total", job="B") == 1
    assert value(families, "dojob_flap_total", job="A") == 1
    assert value(families, "dojob_reloads_total", result="failed") == 1
    # nothing from the process-wide default registry leaks in
    assert not any(name.startswith(("python_", "process_")) for name in families)


def test_jobs_a_reload_removed_leave_the_per_job_metrics():
    from test_readme_promises import readme_says

    import dojob

    readme_says("Per-job series of jobs a reload removed go away.")

    class A(dojob.DummyJob):
        pass

    class B(dojob.DummyJob):
        DEPS = [A]

    metrics = Metrics()
    metrics.run_finished("converged", time.time(), dojob.run(B))
    metrics.record_drift(["A", "B"])
    metrics.record_flap(["B"])
    metrics.run_finished("converged", time.time(), dojob.run(A))
    families = {f.name: f.samples for f in text_string_to_metric_families(metrics.text())}
    assert {s.labels["job"] for s in families["dojob_job_tries"]} == {"A"}
    assert {s.labels["job"] for s in families["dojob_job_status"]} == {"A"}
    # the drift and flap series of B went too (a loop reloaded all day kept every name it ever had)
    assert [(s.labels["job"], s.value) for s in families["dojob_drift"] if s.name == "dojob_drift_total"] == [("A", 1)]
    assert [s for s in families["dojob_flap"] if s.name == "dojob_flap_total"] == []


def test_serve_in_process_on_a_free_port_and_close():
    metrics = Metrics()
    host, port = metrics.serve("127.0.0.1", 0)
    try:
        assert host == "127.0.0.1" and port > 0
        families = scrape(f"http://127.0.0.1:{port}/metrics")
        assert value(families, "dojob_runs_total", verdict="error") == 0
    finally:
        metrics.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
