# SPDX-License-Identifier: GPL-3.0-or-later
"""The block store on a real file through io_uring survives kill -9: a writer
process (store/tests/store_uring_writer.c) writes objects with durable
acknowledgement and prints each ack; it is killed with SIGKILL at a random
moment; the store is reopened (recovery) and every acknowledged write must be
there, whole, and `vstor disk check` must find no damage."""
import os
import random
import signal
import subprocess

from vstor_fixtures import sanitizer_env, wait_for


def writer_bin(vstor_bin):
    build = os.path.dirname(os.path.dirname(vstor_bin))
    return os.path.join(build, "store", "store_uring_writer")


def acks(proc):
    return sum(1 for line in proc.log().splitlines() if line.startswith("ack "))


def test_kill9_restart(procs, vstor, vstor_bin, tmp_path):
    img = tmp_path / "store.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    writer = writer_bin(vstor_bin)
    rng = random.Random(os.getpid())
    for round_ in range(3):
        p = procs.start(writer, "write", img, vstor=False, name=f"writer{round_}")
        target = rng.randint(50, 400)
        wait_for(lambda: acks(p) >= target or not p.alive(), timeout=60, what="acks")
        assert p.alive(), p.log()
        p.signal(signal.SIGKILL)
        p.wait(timeout=10)
        log = p.log()
        n = sum(1 for line in log.splitlines() if line.startswith("ack "))
        assert n >= target
        v = subprocess.run([writer, "verify", str(img)], input=log, capture_output=True,
                           text=True, timeout=60, env=sanitizer_env())
        assert v.returncode == 0, v.stdout + v.stderr
        assert "0 objects bad" in v.stdout
        r = vstor("disk", "check", img)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 damaged" in r.stdout
