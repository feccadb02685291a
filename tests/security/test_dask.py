"""Finding 1: another local user must not reach the Dask cluster vmac starts (and through it run
code as the vmac user), nor its dashboard from outside the machine.

The cluster is ``tasks.io.cluster.dask_client``'s (through ``tasks.ingest.cluster``), the one
ingest, ``evaluate --data FOLDER``, ``run`` and ``validate --workers`` use. The attacker runs as another uid (tests/security/other_user.py) and tries every
port the cluster's processes listen on, in plain TCP and in TLS without the cluster's key.
"""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import psutil
import pytest

from storage_schemas.config import IngestConfig
from tasks.io.files import private_folder
from tests.security.other_user import needs_other_user, python_as_other_user

_ATTACK = r"""
import asyncio, json, os, ssl, sys
from distributed.comm import connect

async def attempt(address):
    host_port = address.split("://", 1)[1]
    no_key = ssl.create_default_context()
    no_key.check_hostname, no_key.verify_mode = False, ssl.CERT_NONE
    answered = []
    for url, args in ((f"tcp://{host_port}", {}), (f"tls://{host_port}", {"ssl_context": no_key})):
        try:
            comm = await connect(url, timeout=3, **args)
            await comm.write({"op": "identity", "reply": True})
            answered.append(f"{url}: {str(await asyncio.wait_for(comm.read(), 3))[:80]}")
        except Exception:
            pass
    return answered

async def main():
    print(json.dumps([a for address in sys.argv[1:] for a in await attempt(address)]))

asyncio.run(main())
"""


def _listening(pids: list[int]) -> list[tuple[str, int]]:
    found = []
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                found.append((conn.laddr.ip, conn.laddr.port))
    return found


def _external_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return None


@pytest.mark.slow
@needs_other_user()
def test_another_user_cannot_reach_the_cluster_and_the_dashboard_stays_on_this_machine(tmp_path):
    from tasks.ingest.cluster import dask_client

    config = IngestConfig(sources=["unused"], store=str(tmp_path / "s.zarr"), dask_workers=1)
    with dask_client(config) as client:
        info = client.scheduler_info()
        addresses = [client.scheduler.address, *info["workers"],
                     *(w["nanny"] for w in info["workers"].values() if w.get("nanny"))]
        me = psutil.Process()
        listening = _listening([me.pid, *(p.pid for p in me.children(recursive=True))])
        dashboard_port = info["services"]["dashboard"]
        link = client.dashboard_link
        scratch = list(client.run(lambda dask_worker: dask_worker.local_directory).values())
        attack = python_as_other_user(_ATTACK, *addresses)
        external = _external_address()
        reached = None
        if external:
            with socket.socket() as probe:
                probe.settimeout(3)
                reached = probe.connect_ex((external, dashboard_port)) == 0
    assert attack.returncode == 0, attack.stderr[-2000:]
    assert json.loads(attack.stdout) == [], f"another user reached the cluster: {attack.stdout}"
    assert all(address.startswith("tls://127.0.0.1:") for address in addresses), addresses
    assert listening and all(ip == "127.0.0.1" for ip, _ in listening), f"listening beyond loopback: {listening}"
    assert link == f"http://127.0.0.1:{dashboard_port}/status", link  # the address it really has
    assert reached is not True, f"the dashboard answered on {external}"
    # B6: the workers' scratch is in the user's private folder (0700), not the shared /tmp/dask-scratch-space.
    private = private_folder("dask-scratch")
    assert scratch and all(Path(d).is_relative_to(private) for d in scratch), scratch
    assert stat.S_IMODE(private.stat().st_mode) == 0o700 and stat.S_IMODE(private.parent.stat().st_mode) == 0o700


@pytest.mark.slow
def test_a_users_cluster_is_reached_with_the_users_dask_security_configuration(tmp_path):
    """``--dask-address``: the client takes the TLS files the user configured for Dask."""
    import dask
    from distributed import LocalCluster
    from distributed.security import Security

    from tasks.ingest.cluster import dask_client

    theirs = Security.temporary()
    files = {}
    for name, pem in (("ca-file", theirs.tls_ca_file), ("cert", theirs.tls_client_cert),
                      ("key", theirs.tls_client_key)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(pem)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://", host="127.0.0.1",
                      security=theirs, dashboard_address=None) as cluster:
        config = IngestConfig(sources=["unused"], store=str(tmp_path / "s.zarr"), dask_address=cluster.scheduler_address)
        tls = {"distributed.comm.tls.ca-file": str(files["ca-file"]), "distributed.comm.tls.client.cert":
               str(files["cert"]), "distributed.comm.tls.client.key": str(files["key"]),
               "distributed.comm.require-encryption": True}
        with dask.config.set(tls), dask_client(config) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3


def test_evaluate_takes_workers_for_the_cluster_that_ingests_its_data(tmp_path):
    from cli.args import evaluate_config_from_args
    from cli.parsers import build_parser
    from tasks.evaluate.plan import ingest_config_for

    args = build_parser().parse_args(["evaluate", "--baseline", "random-init", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--workers", "2"])
    assert ingest_config_for(evaluate_config_from_args(args)).dask_workers == 2
