"""prefect.yaml: every deployment's config validates against its flow's config model; and for real,
a Prefect server and two workers on loopback, `prefect deploy --all`, and a pipeline deployment run
that hands pre-training to the gpu pool's deployment."""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import typing
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("prefect server did not become healthy")


_TRIGGER = """
import json, sys
from prefect.deployments import run_deployment
run = run_deployment("pipeline_flow/pipeline_flow", parameters={"config": json.loads(sys.argv[1])}, timeout=900)
print(json.dumps({"state": run.state.type.value, "name": run.name}))
"""


def test_every_deployment_config_validates():
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    for deployment in deployments:
        path, name = deployment["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        config_model = typing.get_type_hints(flow.fn)["config"]
        config_model.model_validate(deployment["parameters"]["config"])
    assert {d["name"] for d in deployments} >= {"pipeline_flow", "pretrain_flow"}


def test_pipeline_and_pretrain_deployments_carry_tags_and_a_concurrency_limit():
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    deployments = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    for name in ("pipeline_flow", "pretrain_flow"):
        assert "vmac" in deployments[name]["tags"]
        limit = ConcurrencyLimitConfig.model_validate(deployments[name]["concurrency_limit"])
        assert limit.limit == 1, name


@pytest.mark.slow
def test_deploy_all_and_run_pipeline_with_gpu_pool_handover(tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_KEY", "PREFECT_PROFILE")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api, "VMAC_PROJECT_DIR": str(ROOT),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
    })
    started: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([PREFECT, *args], cwd=ROOT, env=env, stdout=open(logs / f"{name}.log", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        return proc

    try:
        server = start("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))
        _wait_healthy(api, server)
        for pool in ("process", "gpu"):
            subprocess.run([PREFECT, "work-pool", "create", pool, "--type", "process"], cwd=ROOT, env=env,
                           check=True, capture_output=True)
        deployed = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                                  capture_output=True, text=True)
        assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
        for name in ("pipeline_flow", "ingest_flow", "validate_flow", "pretrain_flow", "evaluate_flow"):
            assert f"{name}/{name}" in deployed.stdout
        inspected = subprocess.run([PREFECT, "deployment", "inspect", "pretrain_flow/pretrain_flow", "--output", "json"],
                                   cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        pretrain = json.loads(inspected.stdout)
        assert "gpu" in pretrain["tags"] and pretrain["global_concurrency_limit"]["limit"] == 1, inspected.stdout
        start("worker-process", "worker", "start", "--pool", "process")
        start("worker-gpu", "worker", "start", "--pool", "gpu")

        out = tmp_path / "out"
        config = {
            "out": str(out), "sample_small": True, "dask_workers": 1, "progress": False,
            "pretrain_on": "deployment", "pretrain_deployment": "pretrain_flow/pretrain_flow",
            "pretrain": {"model": {"input_size": 64, "decoder_dim": 32}, "data": {"loader_workers": 0},
                         "optimiser": {"max_steps": 2, "batch_size": 4}},
            # The handover is what this test is about: a small, quick evaluation.
            "evaluate": {"features": {"short_side": 64}, "pixel_floor": False},
        }
        triggered = subprocess.run([sys.executable, "-c", _TRIGGER, json.dumps(config)], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=1200)
        assert triggered.returncode == 0, triggered.stderr[-3000:]
        result = json.loads(triggered.stdout.strip().splitlines()[-1])
        assert result["state"] == "COMPLETED", (logs / "worker-process.log").read_text()[-4000:]
        assert (out / "report.md").exists()
        assert (out / "runs" / "tiny-cpu-001" / "encoder.pt").exists()
        # The pre-training ran as its own deployment run, picked up by the gpu pool's worker.
        assert "pretrain_flow" in (logs / "worker-gpu.log").read_text()
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc in reversed(started):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
