"""Whether the Ray nodes a run's trials need are still alive: a dead node ends the run.

When Ray's GCS declares the driver's local node dead (its raylet missed the health checks
on an overloaded machine, or was killed), the raylet exits and its trials die with it;
Ray Tune then waits forever for resources that never come back. ``NodeWatch`` asks the
GCS every few seconds and, once the node is gone, stops the experiment through Tune's
``Stopper`` hook; the driver then stops the run as interrupted, so ``--resume`` goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune import Stopper

from nasfcn.errors import NasfcnError

log = logging.getLogger("nasfcn.search")

POLL_S = 5.0  # how often the GCS is asked; a dead node stops the run within this (plus Tune's stop)
_FAILED_POLLS = 6  # a GCS that does not answer this many asks in a row counts as a lost node too

#: Ray's GCS health checks of the local node. Ray's defaults (a check every 3 s, answered
#: within 10 s, 5 misses) declare a raylet dead after ~65 s of slow answers, which an
#: overloaded machine reaches. A one-machine "cluster" has no other node to move work to:
#: a false death only loses work, so a local Ray waits ~2 min of silence (4 misses of a
#: check every 10 s answered within 20 s) and counts 20 s answers as alive. A killed raylet
#: is still declared dead after ~40 s. Never set for a cluster (``--ray-address``).
LOCAL_HEALTH_CHECKS: dict[str, int] = {
    "health_check_period_ms": 10_000,
    "health_check_timeout_ms": 20_000,
    "health_check_failure_threshold": 4,
}

LOCAL_LOST = "the local Ray node stopped answering health checks (the machine was overloaded?)"


class RayNodeLostError(NasfcnError, RuntimeError):
    """The Ray node(s) the trials ran on are gone: the machine's fault, not the input's."""


def local_system_config(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """``LOCAL_HEALTH_CHECKS`` for ``ray.init(_system_config=...)``, less the keys the user set.

    Ray reads each key from ``RAY_<key>`` too, but ``_system_config`` wins over it: a key
    given in the environment is left to the environment.
    """
    environ = os.environ if environ is None else environ
    return {key: value for key, value in LOCAL_HEALTH_CHECKS.items() if f"RAY_{key}" not in environ}


def lost_nodes(nodes: Sequence[Mapping[str, Any]], local_node: str | None, address: str | None) -> str | None:
    """Why the trials have no node left (``ray.nodes()`` rows), or None while they do.

    A local Ray (``local_node``, this driver's node id) is lost with its one node; a cluster
    only once none of its nodes is alive (a dead worker node's trials fail on their own).
    """
    if local_node is not None:
        mine = [node for node in nodes if node.get("NodeID") == local_node]
        if mine and all(node.get("Alive") for node in mine):
            return None
        return LOCAL_LOST
    if any(node.get("Alive") for node in nodes):
        return None
    return f"no node of the Ray cluster at {address or 'the given --ray-address'} is alive"


class NodeWatch(Stopper):
    """Asks the GCS in a background thread; Tune's loop reads the verdict (``stop_all``).

    The thread keeps a slow or hanging GCS call out of Tune's loop and the live view.
    """

    def __init__(self, address: str | None, poll_s: float = POLL_S) -> None:
        import ray

        self.address = address
        self.poll_s = poll_s
        self.local_node: str | None = None if address else ray.get_runtime_context().get_node_id()
        self.lost: str | None = None
        self._failed = 0
        self._done = threading.Event()

    # Tune pickles its run config (this stopper among it) with the experiment state.
    def __getstate__(self) -> dict[str, Any]:
        return {key: self.__dict__[key] for key in ("address", "poll_s", "local_node", "lost", "_failed")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._done = threading.Event()

    def check(self) -> str | None:
        """Ask the GCS now; returns (and keeps) why the trials have no node left, or None."""
        import ray

        if self.lost is not None:
            return self.lost
        try:
            nodes = ray.nodes()
        except Exception as err:  # the GCS itself is away: lost once that lasts
            self._failed += 1
            log.warning("Ray's GCS did not answer (%d in a row): %s", self._failed, err)
            if self._failed >= _FAILED_POLLS:
                self.lost = f"Ray's GCS stopped answering ({self._failed} tries, {err})"
            return self.lost
        self._failed = 0
        self.lost = lost_nodes(nodes, self.local_node, self.address)
        if self.lost is not None:
            log.error("%s: stopping the trials", self.lost)
        return self.lost

    def start(self) -> None:
        threading.Thread(target=self._run, name="nasfcn-node-watch", daemon=True).start()

    def close(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(self.poll_s):
            if self.check() is not None:
                return

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.lost is not None
