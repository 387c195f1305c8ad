"""How the engine's parallel loops wait for work: a setting for entry points, never for an import.

A module of its own, outside ``tsne``, so that ``tensorboard-al`` can apply
it without importing the engine (and numba) for commands that never use it.
"""
import os

__all__ = ["passive_openmp_wait"]


def passive_openmp_wait(environ=None):
    """Let OpenMP worker threads sleep, not spin, while they wait: OMP_WAIT_POLICY=PASSIVE unless set.

    numba runs the engine's parallel loops on OpenMP threads, which by
    default spin while waiting for work; on a server shared with TensorBoard
    and other users that spinning steals the cores the other thread of a
    parallel loop needs, and loops got 4x slower under load. The OpenMP
    runtime reads the variable once, when it is loaded (numba loads it for
    the first parallel loop), so this helps only when called before that,
    and it writes the process environment, which child processes inherit.
    Hence it is called by the programs that own their process, not on import:
    ``tensorboard-al`` (``cli.main``) and the server's layout sessions
    (``sessions.SessionManager``) call it; a script that imports the engine
    sets OMP_WAIT_POLICY itself if it wants it. An explicit setting by the
    user wins.

    environ : the mapping to update (default ``os.environ``).
    Returns the policy in effect for a runtime loaded from now on.
    """
    environ = os.environ if environ is None else environ
    return environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
