"""Live layout sessions: lifecycle, live changes, idle freeing, concurrency cap."""
import time

import numpy as np
import pytest

from tensorboard_al_plugin.sessions import SessionManager


def _features(n=150, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(3, 8))
    y = np.arange(n) % 3
    return (centres[y] + rng.normal(size=(n, 8))).astype(np.float32), y


def _wait(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


PARAMS = dict(perplexity=10, random_state=0, n_iter=100000)


@pytest.fixture
def manager():
    m = SessionManager(max_running=2, idle_timeout_s=600)
    yield m
    m.close()


def test_started_session_advances_and_positions_are_polled(manager):
    X, y = _features()
    st = manager.start(("run", "emb"), lambda: X, np.full(150, -1), PARAMS)
    assert st["state"] in ("preparing", "waiting", "running") and st["method"] == "tsne"
    _wait(lambda: manager.status(("run", "emb"))["iteration"] > 0)
    pos, it1, obj, state = manager.positions(("run", "emb"))
    assert pos.shape == (150, 2) and pos.dtype == np.float32 and state == "running"
    _wait(lambda: manager.positions(("run", "emb"))[1] > it1)
    st = manager.status(("run", "emb"))
    assert np.isfinite(st["objective"]) and st["n_components"] == 2 and st["error"] is None
    assert st["params"]["perplexity"] == 10


def test_pause_stops_and_resume_continues(manager):
    X, _ = _features()
    manager.start("k", lambda: X, None, PARAMS)
    _wait(lambda: manager.status("k")["iteration"] > 5)
    manager.pause("k")
    _wait(lambda: manager.status("k")["state"] == "paused")
    it = manager.status("k")["iteration"]
    time.sleep(0.3)
    assert manager.status("k")["iteration"] == it
    manager.resume("k")
    _wait(lambda: manager.status("k")["iteration"] > it)


def test_labels_and_params_reach_the_running_layout(manager):
    X, y = _features()
    manager.start("k", lambda: X, np.full(150, -1), PARAMS)
    _wait(lambda: manager.status("k")["iteration"] > 5)
    manager.set_labels("k", y)
    st = manager.set_params("k", label_importance=0.5, repulsion_emphasis=0.3)
    assert st["params"]["label_importance"] == 0.5
    run = manager._sessions["k"].run
    _wait(lambda: np.array_equal(run.labels, y) and run.params["repulsion_emphasis"] == 0.3)
    with pytest.raises(ValueError, match="labels"):
        manager.set_labels("k", y[:10])
    with pytest.raises(ValueError, match="label_importance"):
        manager.set_params("k", label_importance=-1)


def test_finished_layout_reacts_to_new_labels(manager):
    X, y = _features()
    manager.start("k", lambda: X, None, dict(PARAMS, n_iter=20, extra_iter=10))
    _wait(lambda: manager.status("k")["state"] == "done")
    assert manager.status("k")["iteration"] == 20
    manager.set_labels("k", y)
    _wait(lambda: manager.status("k")["iteration"] == 30 and manager.status("k")["state"] == "done")


def test_idle_session_is_paused_and_freed_then_resumes_where_it_was():
    m = SessionManager(max_running=2, idle_timeout_s=0.5)
    try:
        X, _ = _features()
        m.start("k", lambda: X, None, PARAMS)
        s = m._sessions["k"]
        # polled until it steps (on a busy machine the preparation alone can outlast the timeout)
        _wait(lambda: m.status("k")["iteration"] > 0)
        _wait(lambda: s.state == "paused", timeout=30)  # then nobody polls
        assert s.freed and s.run is None
        st = m.status("k")
        assert st["freed"] and st["state"] == "paused"
        it = st["iteration"]
        assert it > 0
        m.resume("k")
        _wait(lambda: m.status("k")["iteration"] > it and m.status("k")["state"] == "running")
        assert not m.status("k")["freed"]
    finally:
        m.close()


def test_free_frees_at_once_without_an_idle_timeout_and_resume_rebuilds():
    m = SessionManager(max_running=2, idle_timeout_s=float("inf"))  # as the server's workspaces make it
    try:
        X, _ = _features()
        m.start("k", lambda: X, None, PARAMS)
        _wait(lambda: m.status("k")["iteration"] > 0)
        m.free("missing")  # no session: nothing happens
        m.free("k")
        _wait(lambda: m.status("k")["freed"])
        st = m.status("k")
        assert st["state"] == "paused" and m._sessions["k"].run is None
        m.free("k")  # already freed: stays as it is
        m.resume("k")
        _wait(lambda: m.status("k")["iteration"] > st["iteration"] and m.status("k")["state"] == "running")
        time.sleep(0.3)
        assert not m.status("k")["freed"]  # the earlier free() does not strike again after resume
    finally:
        m.close()


def test_at_most_max_running_sessions_step_at_once():
    m = SessionManager(max_running=1, idle_timeout_s=600)
    try:
        X, _ = _features()
        m.start("a", lambda: X, None, PARAMS)
        _wait(lambda: m.status("a")["state"] == "running")
        m.start("b", lambda: X, None, PARAMS)
        # b takes turns with a but they never step together
        seen = set()
        end = time.monotonic() + 3
        while time.monotonic() < end:
            states = (m.status("a")["state"], m.status("b")["state"])
            assert states.count("running") + states.count("preparing") <= 1
            seen.add(states)
            time.sleep(0.01)
        assert any(s[1] == "waiting" for s in seen) or any(s[0] == "waiting" for s in seen)
        m.pause("a")
        _wait(lambda: m.status("b")["state"] == "running" and m.status("b")["iteration"] > 0)
    finally:
        m.close()


def test_pca_session_is_done_at_once():
    m = SessionManager()
    try:
        X, _ = _features()
        m.start("p", lambda: X, None, {"n_components": 3}, method="pca")
        _wait(lambda: m.status("p")["state"] == "done")
        pos, it, obj, state = m.positions("p")
        assert pos.shape == (150, 3) and it == 0 and state == "done"
    finally:
        m.close()


def test_restart_replaces_the_session(manager):
    X, _ = _features()
    manager.start("k", lambda: X, None, PARAMS)
    _wait(lambda: manager.status("k")["iteration"] > 5)
    manager.start("k", lambda: X, None, dict(PARAMS, n_components=3))
    _wait(lambda: manager.positions("k")[0].shape == (150, 3))


def test_unknown_key_and_bad_input(manager):
    assert manager.status("nope") is None
    assert manager.positions("nope") is None
    manager.set_labels("nope", np.zeros(3))  # no-op
    manager.set_labels("nope", lambda: pytest.fail("labels made for a session that is not there"))
    for call in (manager.pause, manager.resume, manager.set_params):
        with pytest.raises(KeyError):
            call("nope")
    with pytest.raises(ValueError, match="method"):
        manager.start("k", lambda: None, None, {}, method="isomap")
    with pytest.raises(ValueError, match="n_components"):
        manager.start("k", lambda: None, None, {"n_components": 4})
    with pytest.raises(ValueError, match="unknown"):
        manager.start("k", lambda: None, None, {"bogus": 1})


def test_failing_feature_loader_is_reported_as_error(manager):
    def broken():
        raise OSError("tensor file is gone")
    manager.start("k", broken, None, PARAMS)
    _wait(lambda: manager.status("k")["state"] == "error")
    assert "tensor file is gone" in manager.status("k")["error"]


def test_close_stops_all_threads():
    m = SessionManager()
    X, _ = _features()
    m.start("a", lambda: X, None, PARAMS)
    m.start("b", lambda: X, None, PARAMS)
    threads = [s.thread for s in m._sessions.values()]
    m.close()
    assert not any(t.is_alive() for t in threads)


def test_pause_answers_paused_at_once_and_pca_ignores_pause():
    m = SessionManager()
    try:
        X, _ = _features()
        m.start("k", lambda: X, None, PARAMS)
        _wait(lambda: m.status("k")["state"] == "running")
        assert m.pause("k")["state"] == "paused"
        m.start("p", lambda: X, None, {}, method="pca")
        _wait(lambda: m.status("p")["state"] == "done")
        assert m.pause("p")["state"] == "done"
        assert m.resume("p")["state"] == "done"
    finally:
        m.close()


def test_eta_extrapolates_the_speed_so_far_and_counts_down():
    from tensorboard_al_plugin.sessions import _Session

    s = _Session("k", None, None, {"n_iter": 10, "extra_iter": 0, "n_components": 2}, "tsne")
    m = SessionManager()
    s.costs = {"neighbors": 9.0, "affinities": 1.0}
    s.phase = "loading"
    assert m._eta(s) is None                      # loading: no estimate
    m._set_phase(s, "neighbors", 0.0)
    s.cost_t0 -= 4.0                              # as if 4 s of work so far ...
    m._set_phase(s, "neighbors", 0.5)             # ... did half the neighbours (4.5 of 10)
    eta = m._eta(s)
    assert 4.0 < eta <= 4.9                       # 4 s * 5.5 / 4.5 = 4.9 s left
    assert 0.05 + 0.95 * 0.45 == pytest.approx(s.progress)
    s.cost_at -= 1.0                              # a second later, no news: one second less
    s.cost_t0 -= 1.0
    assert m._eta(s) == pytest.approx(eta - 1.0, abs=0.15)
    m._set_phase(s, "neighbors", 0.2)             # progress never moves back
    assert s.phase_fraction == 0.5
    m._set_phase(s, "first_iterations")
    assert m._eta(s) is None


def test_eta_runs_on_to_the_first_frame():
    """The first chunk of iterations is costed like the other phases: while it
    runs, the estimate says the time left to the first frame (not None)."""
    from tensorboard_al_plugin.sessions import _Session, phase_costs

    s = _Session("k", None, None, {"n_iter": 10, "extra_iter": 0, "n_components": 2}, "tsne")
    m = SessionManager()
    s.costs = phase_costs(70_000, 50, 60, pca=True)
    assert set(s.costs) == {"neighbors", "affinities", "pca", "first_iterations"}
    m._set_phase(s, "neighbors", 0.0)
    s.cost_t0 -= 10.0                             # 10 s for the neighbours, the calibration, the PCA
    m._set_phase(s, "pca", 1.0)
    m._set_phase(s, "first_iterations", 0.0)
    eta = m._eta(s)
    total = sum(s.costs.values())
    assert eta == pytest.approx(10.0 * s.costs["first_iterations"] / (total - s.costs["first_iterations"]),
                                abs=0.1)
    assert 0 < eta < 10 and s.progress < 1.0


def test_neighbour_phase_is_costed_below_n_squared_above_the_threshold():
    from tensorboard_al_plugin.sessions import phase_costs
    from tensorboard_al_plugin.tsne.nearest_neighbors import APPROXIMATE_MIN_ROWS

    small = phase_costs(APPROXIMATE_MIN_ROWS // 2, 50, 60, pca=False)["neighbors"]
    big = phase_costs(1_000_000, 50, 60, pca=False)["neighbors"]
    # exact: N^2 below the threshold; above it, linear in N
    assert phase_costs(APPROXIMATE_MIN_ROWS // 4, 50, 60, pca=False)["neighbors"] == pytest.approx(small / 4)
    assert big == pytest.approx(phase_costs(500_000, 50, 60, pca=False)["neighbors"] * 2)
