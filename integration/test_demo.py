# SPDX-License-Identifier: GPL-3.0-or-later
"""`vstor demo` end to end, through real NBD clients only (qemu-io, qemu-img,
nbdinfo, nbdcopy, fio's nbd engine), so our code is never on both sides:
the demo's cluster serves image 'demo' over NBD; an OSD killed with -9 during
an fio verify run is restarted by the engine and fio completes and verifies;
a second run of the demo finds the data of the first."""
import hashlib
import os
import re
import shutil
import signal
import subprocess

import pytest

from vstor_fixtures import free_port, wait_for

NEEDED = ("qemu-io", "qemu-img", "nbdinfo", "nbdcopy", "fio")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in NEEDED),
                                reason="needs qemu-utils, libnbd-bin and fio")

IMAGE_SIZE = 256 << 20


def run(*cmd, timeout=300, check=True, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def sha256(path, limit=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = limit
        while left is None or left > 0:
            chunk = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest()


class Demo:
    def __init__(self, procs, dirpath, port, name):
        self.dir, self.port = dirpath, port
        self.uri = f"nbd://127.0.0.1:{port}/demo"
        self.proc = procs.start("demo", "--dir", dirpath, "--osds", 3, "--size", "512M",
                                "--image-size", "256M", "--nbd-port", port, name=name,
                                env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"})
        wait_for(lambda: "vstor demo is running" in self.proc.log() or not self.proc.alive(),
                 180, interval=0.2, what="the demo to start")
        assert self.proc.alive(), self.proc.log()[-3000:]

    def child_pids(self, prefix):
        """Latest pid the engine reported for each child whose name starts with prefix."""
        pids = {}
        for m in re.finditer(r"(\S+): started pid (\d+)", self.proc.log()):
            if m.group(1).startswith(prefix):
                pids[m.group(1)] = int(m.group(2))
        return pids

    def stop(self, ctrl_c=False):
        """SIGINT to the demo; with ctrl_c, to its whole process group, as a
        terminal's Ctrl-C does. Either way the demo stops its children in order
        (exports, OSDs, mon): none of them sees the signal itself and dies."""
        if ctrl_c:
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.signal(signal.SIGINT)
        assert self.proc.wait(60) == 0, self.proc.log()[-3000:]
        log = self.proc.log()
        assert "every child has stopped" in log
        shutdown = log[log.index("demo serve: signal"):]
        assert " died: " not in shutdown and "second signal" not in shutdown, shutdown


@pytest.fixture
def demo(procs, tmp_path):
    d = Demo(procs, tmp_path / "demo", free_port(), "demo")
    yield d
    if d.proc.alive():
        d.stop()


def test_nbd_clients(demo, tmp_path):
    info = run("nbdinfo", "--json", demo.uri).stdout
    assert f'"export-size": {IMAGE_SIZE}' in info
    assert '"block_size_minimum": 4096' in info

    # qemu-io: patterns written and read back; the 8 KiB write straddles an
    # object boundary (1 MiB is a multiple of the 128 KiB object size).
    r = run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 2M", "-c", "write -P 0xc3 1044480 8192",
            "-c", "read -P 0x5a 0 1044480", "-c", "read -P 0xc3 1044480 8192",
            "-c", "read -P 0x5a 1052672 1044480", "-c", "read -P 0 2097152 1M", demo.uri)
    assert "Pattern verification failed" not in r.stdout + r.stderr

    # qemu-img: a raw and a qcow2 image with known content, in and back out.
    src = tmp_path / "src.raw"
    with open(src, "wb") as f:
        f.write(os.urandom(24 << 20))
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, demo.uri)
    out = tmp_path / "out.raw"
    run("qemu-img", "convert", "-f", "raw", "-O", "raw", demo.uri, out)
    assert sha256(out, 24 << 20) == sha256(src)
    qcow = tmp_path / "src.qcow2"
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, qcow)
    run("qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", qcow, demo.uri)
    out.unlink()
    run("qemu-img", "convert", "-f", "raw", "-O", "raw", demo.uri, out)
    assert sha256(out, 24 << 20) == sha256(src)

    # nbdcopy in and out.
    blob = tmp_path / "blob"
    with open(blob, "wb") as f:
        f.write(os.urandom(IMAGE_SIZE))
    run("nbdcopy", blob, demo.uri)
    back = tmp_path / "back"
    run("nbdcopy", demo.uri, back)
    assert sha256(back) == sha256(blob)

    # fio with verify, at iodepth 1 and 32.
    for depth in (1, 32):
        r = run("fio", "--name=v", "--ioengine=nbd", f"--uri={demo.uri}", "--rw=randwrite",
                "--bs=4k", f"--size={16 << 20}", f"--iodepth={depth}", "--verify=crc32c",
                "--do_verify=1", "--verify_state_save=0", "--output-format=terse",
                "--terse-version=3", timeout=600)
        assert r.stdout.split(";")[4] == "0", r.stdout  # fio's error field

    # The demo's export reached its OSDs over the local transport (net_local_dir).
    ups = re.findall(r"nbd-client: connection to \S+ up \(osd \d+, protocol \d+(, local socket)?\)",
                     demo.proc.log())
    assert len(ups) >= 3 and all(ups), ups


def test_kill_osd_during_fio_verify(demo):
    fio = subprocess.Popen(
        ["fio", "--name=v", "--ioengine=nbd", f"--uri={demo.uri}", "--rw=randwrite", "--bs=4k",
         f"--size={64 << 20}", "--iodepth=32", "--verify=crc32c", "--do_verify=1",
         "--verify_state_save=0", "--output-format=terse", "--terse-version=3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        osds = demo.child_pids("osd:")
        assert len(osds) == 3
        name, pid = sorted(osds.items())[1]
        wait_for(lambda: fio.poll() is not None or os.path.exists(f"/proc/{fio.pid}"), 10)
        os.kill(pid, signal.SIGKILL)
        # The engine restarts the OSD; fio pauses, then completes and verifies.
        wait_for(lambda: demo.child_pids("osd:")[name] != pid, 60, what="the OSD restart")
        out, err = fio.communicate(timeout=600)
    finally:
        if fio.poll() is None:
            fio.kill()
    assert fio.returncode == 0, out + err
    assert out.split(";")[4] == "0", out
    assert f"{name} (pid {pid}) died: killed by signal 9" in demo.proc.log()


def test_second_run_keeps_data(procs, tmp_path):
    d = Demo(procs, tmp_path / "demo", free_port(), "demo1")
    run("qemu-io", "-f", "raw", "-c", "write -P 0x77 65536 2M", d.uri)
    d.stop(ctrl_c=True)
    d2 = Demo(procs, tmp_path / "demo", d.port, "demo2")
    try:
        assert "formatting OSD" not in d2.proc.log()
        r = run("qemu-io", "-f", "raw", "-c", "read -P 0x77 65536 2M", d2.uri)
        assert "Pattern verification failed" not in r.stdout + r.stderr
    finally:
        d2.stop()
