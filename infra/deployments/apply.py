"""Apply the deployments of ``prefect.yaml`` without undoing what was changed on the server.

    PREFECT_API_URL=http://127.0.0.1:4200/api python infra/deployments/apply.py [--prefect-file F]

Run from the code directory (``RECSYS_CODE_DIR``): the compose ``prefect-deploy`` job and
``make stack-up`` call it. Plain ``prefect --no-prompt deploy --all`` falls short twice:

1. on a fresh server it fails with "work pool 'recsys-process' does not exist" (the pool is only
   created by a worker that has started). Here every work pool the deployments name is created
   first (type ``process``, Prefect's default job template) unless it exists.
2. on a server that has the deployments already, it replaces their schedules with those of
   ``prefect.yaml`` and un-pauses them, so a schedule turned off or edited in the UI comes back
   on the next start. Here a deployment already on the server is updated (entrypoint, parameter
   schema, job variables, description, tags, concurrency) but keeps its schedules and its paused
   state; only a deployment absent from the server gets the schedules of ``prefect.yaml``.
   ``--reset-schedules`` applies the file's schedules to every deployment (what a change of a
   schedule in ``prefect.yaml`` needs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

POOL_TYPE = "process"


def pools_of(config: dict) -> set[str]:
    """Names of the work pools the deployments of a ``prefect.yaml`` (anchors resolved) use."""
    return {
        d["work_pool"]["name"]
        for d in config.get("deployments") or []
        if (d.get("work_pool") or {}).get("name")
    }


def preserving(config: dict, on_server: dict[str, bool]) -> dict:
    """``config`` where each deployment already on the server (name -> paused) keeps its
    schedules (an empty list: Prefect leaves the server's schedules as they are) and its paused
    state; the others are left as written."""
    out = dict(config)
    out["deployments"] = []
    for deployment in config.get("deployments") or []:
        deployment = dict(deployment)
        if deployment["name"] in on_server:
            deployment["schedules"] = []
            deployment["paused"] = on_server[deployment["name"]]
        out["deployments"].append(deployment)
    return out


async def ensure_work_pools(names: set[str]) -> list[str]:
    """Create each work pool (type process) unless it exists; returns the names created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    created = []
    async with get_client() as client:
        for name in sorted(names):
            try:
                await client.read_work_pool(name)
                continue
            except ObjectNotFound:
                pass
            template = await get_default_base_job_template_for_infrastructure_type(POOL_TYPE)
            try:
                await client.create_work_pool(
                    WorkPoolCreate(name=name, type=POOL_TYPE, base_job_template=template or {})
                )
                created.append(name)
            except ObjectAlreadyExists:  # a worker created it meanwhile: as good
                pass
    return created


async def deployments_on_server(config: dict) -> dict[str, bool]:
    """``{name: paused}`` of the deployments of ``config`` that the server already has."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    wanted = {d["name"]: d.get("entrypoint") for d in config.get("deployments") or []}
    if not wanted:
        return {}
    flt = DeploymentFilter(name=DeploymentFilterName(any_=sorted(wanted)))
    async with get_client() as client:
        found = await client.read_deployments(deployment_filter=flt)
    # names are unique per flow only: the entrypoint tells ours from another flow's
    return {
        d.name: bool(d.paused)
        for d in found
        if d.name in wanted and d.entrypoint in (None, wanted[d.name])
    }


def apply(
    prefect_file: Path,
    *,
    reset_schedules: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """Create the missing work pools, then apply every deployment of ``prefect_file``.

    Returns ``{"pools_created": [...], "created": [...], "updated": [...]}``; raises
    ``RuntimeError`` with ``prefect deploy``'s output when it fails.
    """
    config = yaml.safe_load(Path(prefect_file).read_text())
    created_pools = asyncio.run(ensure_work_pools(pools_of(config)))
    on_server = {} if reset_schedules else asyncio.run(deployments_on_server(config))
    run_env = dict(os.environ if env is None else env)
    # an empty schedules list keeps the server's schedules (Prefect 3's documented default)
    run_env["PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY"] = "false"
    with tempfile.TemporaryDirectory(prefix="recsys-deploy-") as tmp:
        effective = Path(tmp) / "prefect.yaml"
        effective.write_text(yaml.safe_dump(preserving(config, on_server), sort_keys=False))
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "prefect",
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                str(effective),
            ],
            cwd=cwd or Path(prefect_file).resolve().parent,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if out.returncode != 0:
        raise RuntimeError(
            f"prefect deploy --all failed ({out.returncode}):\n"
            f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    names = [d["name"] for d in config.get("deployments") or []]
    return {
        "pools_created": created_pools,
        "created": [n for n in names if n not in on_server],
        "updated": [n for n in names if n in on_server],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prefect-file", type=Path, default=Path("prefect.yaml"))
    p.add_argument(
        "--reset-schedules",
        action="store_true",
        help="apply the schedules of the file to deployments that exist already",
    )
    args = p.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        sys.stderr.write(
            "error: set PREFECT_API_URL to the Prefect server's API, e.g. "
            "http://prefect-server:4200/api\n"
        )
        return 2
    try:
        result = apply(args.prefect_file, reset_schedules=args.reset_schedules, cwd=Path.cwd())
    except RuntimeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    print(
        f"work pools created: {', '.join(result['pools_created']) or 'none'}; deployments "
        f"created: {', '.join(result['created']) or 'none'}; updated, schedules and paused "
        f"state kept: {', '.join(result['updated']) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
