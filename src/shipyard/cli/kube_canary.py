"""promote / abort / pause / resume for a canary environment with ``target = "kubernetes"``: the commands
patch its Argo Rollouts ``Rollout`` from the CLI, as ``kubectl argo rollouts`` does (control/kube/rollouts.py);
no local control plane is involved. Helper of cli/canary_control.py."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from shipyard.cli.app import AppContext
from shipyard.cli.kube_deploy import audit
from shipyard.control.kube import records, rollouts
from shipyard.control.kube.cluster import Cluster
from shipyard.engine.kube.render import k8s_name
from shipyard.engine.kube.rollout_status import Command
from shipyard.errors import BadInput

DONE = {"promote": "promoted", "promote_full": "fully promoted", "abort": "aborted", "pause": "paused",
        "resume": "resumed"}


def control(app: AppContext, env: str, command: str, as_json: bool) -> int:
    assert command in DONE, command
    envspec = app.env(env)
    if envspec.strategy != "canary":
        raise BadInput(f"environments.{env}.strategy is {envspec.strategy!r}: only a canary environment has a "
                       f"rollout to {command.split('_')[0]}")
    name = k8s_name(f"{app.spec.app.name}-{env}")
    cluster = Cluster.connect(envspec.kube, app.project.dir, env)

    async def main() -> dict[str, Any]:
        try:
            await cluster.check()
            await rollouts.require_argo(cluster)
            st, sent = await rollouts.control(cluster, name, cast(Command, command))
            release = (await records.read_env(cluster, name)).current  # the Rollout's new release
        finally:
            await cluster.close()
        return {"env": env, "rollout": name, "namespace": cluster.namespace, "command": command,
                "release": release, "patched": sent, "rollout_status": st.to_json()}

    doc = asyncio.run(main())
    # As the control plane audits a local canary command: canary_<command>, the release it acted on.
    said = "; ".join(doc["patched"]) or "nothing to change"
    audit(app, f"canary_{command}", env, doc["release"], {"message": said, "rollout": name})
    if as_json:
        app.print_json(doc)
    else:
        app.echo(f"{env}: rollout {name} {DONE[command]} ({said})")
    return 0
