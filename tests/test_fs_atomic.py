"""fs.write_atomic, the one atomic write of logdir/ (fs.write_bytes and the label store use it)."""
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.logdir import fs  # noqa: E402

WRITES_PER_THREAD = 200


def _leftovers(folder):
    return sorted(name for name in os.listdir(folder) if ".tmp-" in name)


def test_two_threads_replacing_one_file_never_collide_and_leave_no_temp_files(tmp_path):
    """Each call has its own temp file: with one temp name per process, the second thread's
    exclusive create fails (or its file is renamed away under it) while the first one writes."""
    path = str(tmp_path / "projector_config.pbtxt")
    payloads = [bytes([65 + t]) * 65536 for t in range(2)]  # 64 KiB each, so a write takes a while
    start = threading.Barrier(2)
    errors = []

    def writer(t):
        start.wait()
        try:
            for _ in range(WRITES_PER_THREAD):
                fs.write_bytes(path, payloads[t])
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open(path, "rb") as f:
        assert f.read() in payloads  # one writer's bytes, whole
    assert _leftovers(tmp_path) == []


def test_every_call_gets_a_new_temp_name_beside_the_file(tmp_path):
    path = str(tmp_path / "snapshot.json")
    names = {fs.temp_path(path) for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith(path + ".tmp-%d-" % os.getpid()) for n in names)


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp_file(tmp_path):
    path = str(tmp_path / "labels.tsv")
    fs.write_atomic(path, b"old\n")
    with pytest.raises(TypeError):
        fs.write_atomic(path, "not bytes")
    with open(path, "rb") as f:
        assert f.read() == b"old\n"
    assert _leftovers(tmp_path) == []


def test_a_link_at_the_path_is_replaced_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    path = tmp_path / "published.json"
    os.symlink(str(victim), str(path))
    fs.write_atomic(str(path), b"{}", durable=False)
    assert victim.read_text() == "untouched"
    assert not path.is_symlink() and path.read_bytes() == b"{}"


def test_mode_sets_the_permission_bits_of_a_new_file(tmp_path):
    path = str(tmp_path / "snapshot.json")
    old_umask = os.umask(0o002)
    try:
        fs.write_atomic(path, b"{}", mode=0o644)  # the label store's files
        assert os.stat(path).st_mode & 0o777 == 0o644
        fs.write_atomic(path + "2", b"{}")
        assert os.stat(path + "2").st_mode & 0o777 == 0o664  # 0o666 less the umask
    finally:
        os.umask(old_umask)
