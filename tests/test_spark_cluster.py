"""The Spark engine on a real standalone cluster: a master and two workers on 127.0.0.1, started from pyspark's own scripts.

``audit --engine spark --spark-master spark://127.0.0.1:PORT`` runs in a fresh process (its own
driver), the two workers run its executors, and the audit equals the pandas engine's point estimates.
The daemons are stopped in a ``finally`` whatever happens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fairaudit.audit import read_audit
from tests.conftest import WAIT_CEILING_S
from tests.test_spark_engine import KEYS, write_inputs

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_CEILING_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_CEILING_S} s waiting for {what}")
        time.sleep(1)


def _log_text(folder: Path, daemon: str) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.glob(f"*{daemon}*.out"))


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_audit_on_a_standalone_cluster(tmp_path):
    import pyspark

    home = Path(pyspark.__file__).parent
    daemon = home / "sbin" / "spark-daemon.sh"
    port = _free_port()
    master = f"spark://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    env = {
        **{k: v for k, v in os.environ.items() if k != "SPARK_NO_DAEMONIZE"},
        "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(logs), "SPARK_PID_DIR": str(tmp_path / "pids"),
        "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_IDENT_STRING": f"fairaudit-{port}", "PYSPARK_PYTHON": sys.executable,
        "SPARK_WORKER_DIR": str(tmp_path / "work"), "SPARK_DAEMON_MEMORY": "512m",
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
    }  # fmt: skip
    daemons = [
        (MASTER, 1, ["--host", "127.0.0.1", "--port", str(port), "--webui-port", "0"]),
        *((WORKER, i, [master, "--host", "127.0.0.1", "--cores", "1", "--memory", "1g", "--webui-port", "0"])
          for i in (1, 2)),
    ]  # fmt: skip
    started = []
    try:
        for kind, instance, arguments in daemons:
            subprocess.run(["bash", str(daemon), "start", kind, str(instance), *arguments], env=env, check=True,
                           timeout=WAIT_CEILING_S, capture_output=True)  # fmt: skip
            started.append((kind, instance))
            if kind == MASTER:
                _wait_for(lambda: "I have been elected leader" in _log_text(logs, "Master"), "the master")
        _wait_for(lambda: _log_text(logs, "Master").count("Registering worker") >= 2, "two workers")

        inputs = write_inputs(tmp_path / "inputs")
        out = tmp_path / "audit"
        command = [
            sys.executable, "-m", "fairaudit", "audit", "--engine", "spark", "--spark-master", master,
            "--spark-conf", "spark.executor.memory=512m", "--spark-conf", "spark.cores.max=2",
            "--spark-conf", "spark.sql.shuffle.partitions=4", "--spark-conf", "spark.driver.memory=1g",
            "--data", str(inputs["data"]), "--recommendations", str(inputs["lists"]), "--test", str(inputs["test"]),
            "--bootstrap", "50", "--attributes", "gender,age_band,gender*age_band", "--out", str(out),
        ]  # fmt: skip
        # A whole audit through a cluster of three JVMs on a busy machine: the ceiling of several waits.
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3 * WAIT_CEILING_S)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Asked to launch executor" in _log_text(logs, "Worker")  # the workers ran the audit

        spark_audit, pandas_audit = read_audit(out), read_audit(inputs["pandas"])
        assert spark_audit.meta["engine"]["master"] == master
        merged = pandas_audit.group_metrics.merge(spark_audit.group_metrics, on=KEYS, suffixes=("_p", "_s"))
        assert set(merged["attribute"]) == {"all", "gender", "age_band", "gender*age_band"}
        assert np.allclose(merged["value_p"], merged["value_s"], rtol=0, atol=1e-9, equal_nan=True)
    finally:
        for kind, instance in reversed(started):
            subprocess.run(["bash", str(daemon), "stop", kind, str(instance)], env=env, timeout=WAIT_CEILING_S,
                           capture_output=True)  # fmt: skip
