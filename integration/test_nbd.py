# SPDX-License-Identifier: GPL-3.0-or-later
"""`vstor nbd-export`, `vstor map` and `vstor unmap` against real clients.

The clients are qemu-io, qemu-img, nbdinfo, nbdcopy and fio's nbd engine, so
our code is never on both sides. Where a test needs bytes no real client
sends (malformed requests, bad options), `RawClient` below speaks the wire
format from proto.md directly.

The exports are file-backed (`--file`), the developer/test mode; the file is
also read directly to check that data really landed.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from vstor_fixtures import wait_for

MiB = 1 << 20
OPTS_MAGIC = 0x49484156454F5054
REP_MAGIC = 0x3E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE, CMD_WZ = range(7)
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 1, 2, 3, 6, 7
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
ERR_UNSUP, ERR_INVALID, ERR_UNKNOWN, ERR_TOO_BIG = (2**31 + 1, 2**31 + 3, 2**31 + 6,
                                                    2**31 + 9)
NBD_EPERM, NBD_EINVAL, NBD_ENOSPC = 1, 22, 28


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def run(*cmd, timeout=120, check=True, cwd=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def pattern_file(path, size, seed):
    """A file of `size` bytes of reproducible pseudo-random data, with runs of
    zeroes so sparse-aware copies (qemu-img, nbdcopy) meet holes too."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            f.write(bytes(MiB) if i % 4 == 3 else rnd.randbytes(MiB))


class Export:
    def __init__(self, proc, img, sock, name):
        self.proc, self.img, self.sock, self.name = proc, img, sock, name

    @property
    def uri(self):
        return f"nbd+unix:///{self.name}?socket={self.sock}"

    def read_file(self, off, n):
        with open(self.img, "rb") as f:
            f.seek(off)
            return f.read(n)


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="vsnbd")  # unix socket paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


def assert_clean_exit(proc):
    """Stops the server like an operator would; it must exit 0 with no
    sanitizer report (leaks included)."""
    rc = proc.stop(timeout=20)
    log = proc.log()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log
    assert rc == 0, log


@pytest.fixture
def export(procs, tmp_path, sockdir):
    """export(size=..., readonly=..., extra=...) starts `vstor nbd-export` on a
    fresh file (or `img=` an existing one) and waits until it serves. At the
    end of the test each export must stop cleanly (assert_clean_exit)."""
    started = []

    def start(size=64 * MiB, readonly=False, extra=(), name="disk", img=None):
        if img is None:
            img = tmp_path / f"{name}.img"
            with open(img, "wb") as f:
                f.truncate(size)
        sock = os.path.join(sockdir, f"{name}.sock")
        args = ["nbd-export", "--file", img, "--socket", sock, "--name", name, *extra]
        if readonly:
            args.append("--readonly")
        p = procs.start(*args, name=f"export-{name}")
        wait_for(lambda: "nbd-export: serving" in p.log() or not p.alive(), 30,
                 what="the export to start")
        assert p.alive(), p.log()
        started.append(p)
        return Export(p, str(img), sock, name)
    yield start
    for p in started:
        assert_clean_exit(p)


class RawClient:
    """The NBD wire format by hand, for what no real client sends."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)
        g = self.recv(18)
        assert struct.unpack(">QQH", g)[:2] == (0x4E42444D41474943, OPTS_MAGIC)
        self.s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES

    def recv(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise EOFError(f"connection closed after {len(b)} of {n} bytes")
            b += chunk
        return b

    def closed_by_server(self):
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def opt(self, o, data=b""):
        self.s.sendall(struct.pack(">QII", OPTS_MAGIC, o, len(data)) + data)

    def reply(self):
        magic, o, t, n = struct.unpack(">QIII", self.recv(20))
        assert magic == REP_MAGIC
        return o, t, self.recv(n)

    def go(self, name=b"disk"):
        self.opt(OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, 3))
        infos = {}
        while True:
            o, t, d = self.reply()
            if t != REP_INFO:
                return t, infos
            infos[struct.unpack(">H", d[:2])[0]] = d[2:]

    def request(self, typ, off, n, flags=0, cookie=1, payload=b""):
        self.s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, typ, cookie, off, n) + payload)

    def simple_reply(self, data_len=0):
        magic, err, cookie = struct.unpack(">IIQ", self.recv(16))
        assert magic == SIMPLE_MAGIC
        return err, cookie, (self.recv(data_len) if not err and data_len else b"")

    def close(self):
        self.s.close()


# ---- information and block sizes -------------------------------------------

def test_nbdinfo_size_and_block_sizes(export):
    need("nbdinfo")
    e = export(size=48 * MiB)
    info = json.loads(run("nbdinfo", "--json", e.uri).stdout)
    ex = info["exports"][0]
    assert ex["export-name"] == "disk"
    assert ex["export-size"] == 48 * MiB
    mn, pref, mx = (ex["block_size_minimum"], ex["block_size_preferred"],
                    ex["block_size_maximum"])
    assert mn in (1, 512, 1024, 2048, 4096)  # 1 without O_DIRECT, else the DIO alignment
    assert pref == 4096 and mx == 32 * MiB
    assert ex["is_read_only"] is False
    for cap in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero",
                "can_multi_conn"):
        assert ex[cap] is True, cap
    assert ex["can_df"] is False  # DF needs structured replies: off by default
    assert "disk.img" in ex["description"]
    listed = json.loads(run("nbdinfo", "--list", "--json",
                            f"nbd+unix:///?socket={e.sock}").stdout)
    assert [x["export-name"] for x in listed["exports"]] == ["disk"]


def test_tcp_listener(procs, tmp_path):
    need("nbdinfo")
    img = tmp_path / "t.img"
    with open(img, "wb") as f:
        f.truncate(8 * MiB)
    p = procs.start("nbd-export", "--file", img, "--bind", "127.0.0.1:0")
    m = wait_for(lambda: re.search(r"listening on tcp 127\.0\.0\.1:(\d+)", p.log()), 30,
                 what="the tcp listener")
    info = json.loads(run("nbdinfo", "--json", f"nbd://127.0.0.1:{m.group(1)}/t.img").stdout)
    assert info["exports"][0]["export-size"] == 8 * MiB


# ---- data through real clients ---------------------------------------------

def test_qemu_io_patterns(export):
    need("qemu-io")
    e = export(size=32 * MiB)
    cmds = [
        "write -P 0xa1 0 1M",             # large
        "write -P 0xb2 1M 4k",            # small, aligned
        "write -P 0xc3 2M 512",           # one sector
        "write -P 0xd4 -f 3M 64k",        # FUA
        "write -P 0xe5 4M 2M",
        "write -z 4M 512k",               # WRITE_ZEROES over data
        "write -P 0x11 6M 1M",
        "discard 6M 1M",                  # TRIM
        "write -P 0x22 6M 8k",
        "flush",
        "aio_write -P 0x33 8M 64k", "aio_write -P 0x44 9M 64k", "aio_flush",
        "read -P 0xa1 0 1M", "read -P 0xb2 1M 4k", "read -P 0xc3 2M 512",
        "read -P 0xd4 3M 64k", "read -P 0 4M 512k", "read -P 0xe5 4608k 1536k",
        "read -P 0x22 6M 8k", "read -P 0x33 8M 64k", "read -P 0x44 9M 64k",
        "read -P 0 10M 1M",               # never written
    ]
    args = ["qemu-io", "-f", "raw"]
    for c in cmds:
        args += ["-c", c]
    r = run(*args, e.uri)
    assert "Pattern verification failed" not in r.stdout + r.stderr
    # the data really is in the file, where qemu-io put it
    assert e.read_file(0, MiB) == b"\xa1" * MiB
    assert e.read_file(2 * MiB, 512) == b"\xc3" * 512
    assert e.read_file(4 * MiB, 512 * 1024) == bytes(512 * 1024)
    assert e.read_file(9 * MiB, 65536) == b"\x44" * 65536


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_qemu_img_convert_in_and_out(export, tmp_path, fmt):
    need("qemu-img")
    size = 24 * MiB
    src_raw = tmp_path / "src.raw"
    pattern_file(src_raw, size, seed=7)
    src = src_raw
    if fmt == "qcow2":
        src = tmp_path / "src.qcow2"
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", src_raw, src)
    e = export(size=size)
    run("qemu-img", "convert", "-n", "-f", fmt, "-O", "raw", src, e.uri)
    assert sha256(e.img) == sha256(src_raw)
    out = tmp_path / f"out.{fmt}"
    run("qemu-img", "convert", "-f", "raw", "-O", fmt, e.uri, out)
    back = tmp_path / "back.raw"
    run("qemu-img", "convert", "-f", fmt, "-O", "raw", out, back)
    assert sha256(back) == sha256(src_raw)
    assert run("qemu-img", "compare", "-f", "raw", "-F", fmt, e.uri, out).returncode == 0


def test_nbdcopy_in_and_out_multi_conn(export, tmp_path):
    need("nbdcopy")
    size = 32 * MiB
    src = tmp_path / "src.raw"
    pattern_file(src, size, seed=11)
    e = export(size=size)
    # --connections uses several NBD connections because the export
    # advertises multi-conn; --flush makes nbdcopy flush before it exits.
    run("nbdcopy", "--connections=4", "--threads=4", "--flush", src, e.uri)
    assert sha256(e.img) == sha256(src)
    out = tmp_path / "out.raw"
    run("nbdcopy", "--connections=4", "--threads=4", e.uri, out)
    assert sha256(out) == sha256(src)
    assert max_concurrent_conns(e.proc.log()) >= 2  # multi-conn was really used


@pytest.mark.parametrize("iodepth", [1, 32])
def test_fio_verify(export, iodepth, tmp_path):
    need("fio")
    e = export(size=64 * MiB)
    size = "8M" if iodepth == 1 else "48M"
    r = run("fio", "--name=verify", "--ioengine=nbd", f"--uri={e.uri}", "--rw=randwrite",
            "--bs=4k", f"--iodepth={iodepth}", f"--size={size}", "--verify=crc32c",
            "--do_verify=1", "--verify_fatal=1", "--verify_state_save=0",
            "--output-format=json", timeout=300, cwd=tmp_path)
    job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    assert job["error"] == 0
    assert job["write"]["total_ios"] > 0 and job["read"]["total_ios"] > 0  # verify reads


@pytest.mark.parametrize("structured", ["false", "true"])
def test_structured_replies_on_and_off(export, tmp_path, structured):
    """nbd_structured_replies (default false): real clients use simple or
    structured replies as offered (the export logs which) and their data
    verifies either way."""
    need("fio")
    need("qemu-io")
    e = export(size=64 * MiB, extra=("--nbd_structured_replies", structured))
    r = run("fio", "--name=verify", "--ioengine=nbd", f"--uri={e.uri}", "--rw=randwrite",
            "--bs=4k", "--iodepth=32", "--size=32M", "--verify=crc32c", "--do_verify=1",
            "--verify_fatal=1", "--verify_state_save=0", "--output-format=json",
            timeout=300, cwd=tmp_path)
    job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    assert job["error"] == 0 and job["read"]["total_ios"] > 0
    r = run("qemu-io", "-f", "raw", "-c", "write -P 0x3c 3M 128k", "-c", "read -P 0x3c 3M 128k",
            e.uri)
    assert "Pattern verification failed" not in r.stdout + r.stderr
    log = e.proc.log()
    if structured == "true":
        assert "structured replies" in log and "simple replies" not in log, log
    else:
        assert "simple replies" in log and "structured replies" not in log, log


def test_reply_spin_with_real_clients(export, tmp_path):
    """nbd_reply_spin_us on (nbd_server.c NOTES 4): fio write+fsync at Q1 and
    verify, qemu-io patterns, and a malformed request on another connection
    while the first one's replies are followed by spins."""
    need("fio")
    need("qemu-io")
    e = export(size=32 * MiB, extra=("--nbd_reply_spin_us", "200"))
    r = run("fio", "--name=verify", "--ioengine=nbd", f"--uri={e.uri}", "--rw=randwrite",
            "--bs=4k", "--iodepth=1", "--fsync=1", "--size=4M", "--verify=crc32c",
            "--do_verify=1", "--verify_fatal=1", "--verify_state_save=0",
            "--output-format=json", timeout=300, cwd=tmp_path)
    job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    assert job["error"] == 0 and job["read"]["total_ios"] > 0
    r = run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 64k", "-c", "flush",
            "-c", "read -P 0x5a 1M 64k", e.uri)
    assert "Pattern verification failed" not in r.stdout + r.stderr
    good = RawClient(e.sock)
    assert good.go()[0] == REP_ACK
    good.request(CMD_WRITE, 4096, 4096, payload=b"s" * 4096, cookie=1)
    assert good.simple_reply()[0] == 0          # a spin on good's socket follows
    bad = RawClient(e.sock)
    assert bad.go()[0] == REP_ACK
    bad.s.sendall(b"\xde\xad\xbe\xef" + bytes(24))
    wait_for(bad.closed_by_server, 10, what="the server to hang up")
    bad.close()
    good.request(CMD_READ, 4096, 4096, cookie=2)
    assert good.simple_reply(4096) == (0, 2, b"s" * 4096)
    good.request(CMD_DISC, 0, 0)
    good.close()
    wait_for(lambda: e.proc.log().count("closed:") >= 4, 10, what="the closes logged")
    spins = [tuple(map(int, m)) for m in
             re.findall(r"\((\d+) requests, (\d+) reply spins, (\d+) found", e.proc.log())]
    fio_conn = max(spins)                        # the connection with the most requests
    assert fio_conn[1] > 0 and fio_conn[2] > 0   # spins were taken, and found requests
    assert e.proc.alive()


def test_multiple_connections_at_once(export, tmp_path):
    need("fio")
    e = export(size=64 * MiB)
    # Four fio jobs, each on its own NBD connection, writing and verifying
    # disjoint 12 MiB regions at the same time.
    r = run("fio", "--name=mc", "--ioengine=nbd", f"--uri={e.uri}", "--rw=randwrite",
            "--bs=16k", "--iodepth=16", "--numjobs=4", "--size=12M", "--offset_increment=16M",
            "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--verify_state_save=0",
            "--group_reporting", "--output-format=json", timeout=300, cwd=tmp_path)
    assert json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]["error"] == 0
    assert max_concurrent_conns(e.proc.log()) >= 4


def max_concurrent_conns(log):
    """The most connections in the transmission phase at once, from the log."""
    live, peak = set(), 0
    for line in log.splitlines():
        m = re.search(r"conn (\d+) \(\S+\): (transmission|closed)", line)
        if m and m.group(2) == "transmission":
            live.add(m.group(1))
            peak = max(peak, len(live))
        elif m:
            live.discard(m.group(1))
    return peak


# ---- read-only --------------------------------------------------------------

def test_readonly_export_refuses_writes(export, tmp_path):
    need("nbdinfo", "qemu-io", "nbdcopy")
    img = tmp_path / "ro.img"
    pattern_file(img, 8 * MiB, seed=3)
    before = sha256(img)
    e = export(img=img, readonly=True, name="ro")
    info = json.loads(run("nbdinfo", "--json", e.uri).stdout)["exports"][0]
    assert info["is_read_only"] is True
    assert info["can_trim"] is False and info["can_zero"] is False
    # reads work
    run("qemu-io", "-r", "-f", "raw", "-c", "read 0 1M", e.uri)
    # real clients are refused
    r = run("qemu-io", "-f", "raw", "-c", "write -P 1 0 4k", e.uri, check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    src = tmp_path / "src.raw"
    pattern_file(src, 8 * MiB, seed=4)
    r = run("nbdcopy", src, e.uri, check=False)
    assert r.returncode != 0 and "read-only" in r.stderr
    # and on the wire: EPERM for WRITE (payload consumed), the session goes on
    c = RawClient(e.sock)
    assert c.go(b"ro")[0] == REP_ACK
    c.request(CMD_WRITE, 0, 4096, payload=b"x" * 4096, cookie=5)
    assert c.simple_reply()[:2] == (NBD_EPERM, 5)
    c.request(CMD_READ, 0, 4096, cookie=6)
    err, cookie, data = c.simple_reply(4096)
    assert (err, cookie) == (0, 6) and data == e.read_file(0, 4096)
    c.close()
    assert sha256(img) == before


# ---- bad input --------------------------------------------------------------

def test_malformed_request_ends_only_that_connection(export):
    need("nbdinfo")
    e = export(size=16 * MiB)
    good = RawClient(e.sock)
    assert good.go()[0] == REP_ACK
    good.request(CMD_WRITE, 4096, 4096, payload=b"g" * 4096, cookie=1)
    assert good.simple_reply()[0] == 0
    # in-band errors: refused, connection kept
    good.request(CMD_CACHE, 0, 4096, cookie=2)
    assert good.simple_reply()[:2] == (NBD_EINVAL, 2)
    good.request(CMD_READ, 100, 512, cookie=3)                 # misaligned (O_DIRECT: 512)
    err = good.simple_reply()[0]
    assert err in (0, NBD_EINVAL)
    if err == 0:                                               # page cache: min block 1
        good.recv(512)
    good.request(CMD_WRITE, 16 * MiB - 4096, 8192, payload=b"z" * 8192, cookie=4)
    assert good.simple_reply()[:2] == (NBD_ENOSPC, 4)          # past the end
    good.request(CMD_READ, 0, 4096, flags=1 << 9, cookie=5)    # unknown flag
    assert good.simple_reply()[:2] == (NBD_EINVAL, 5)
    # framing violations end that connection only
    for garbage in (b"\xde\xad\xbe\xef" + bytes(24),                       # bad magic
                    struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_WRITE, 9, 0, (32 << 20) + 1)):
        bad = RawClient(e.sock)
        assert bad.go()[0] == REP_ACK
        bad.s.sendall(garbage)
        wait_for(bad.closed_by_server, 10, what="the server to hang up")
        bad.close()
    # the first connection is still served, and new ones too
    good.request(CMD_READ, 4096, 4096, cookie=6)
    err, cookie, data = good.simple_reply(4096)
    assert (err, cookie, data) == (0, 6, b"g" * 4096)
    good.request(CMD_DISC, 0, 0)
    good.close()
    run("nbdinfo", e.uri)
    assert e.proc.alive()
    assert e.proc.log().count("protocol error") == 2


def test_bad_options_get_error_replies(export):
    e = export(size=8 * MiB)
    c = RawClient(e.sock)
    c.opt(OPT_LIST, b"junk")
    assert c.reply()[1] == ERR_INVALID
    c.opt(99, b"unknown option data")
    assert c.reply()[1] == ERR_UNSUP
    c.opt(5)  # STARTTLS: no TLS here
    assert c.reply()[1] == ERR_UNSUP
    c.opt(OPT_GO, struct.pack(">I", 50) + b"disk" + struct.pack(">H", 0))
    assert c.reply()[1] == ERR_INVALID
    assert c.go(b"no-such-export")[0] == ERR_UNKNOWN
    c.opt(OPT_INFO, bytes(20000))
    assert c.reply()[1] == ERR_TOO_BIG
    c.opt(OPT_LIST)
    assert c.reply()[1:] == (REP_SERVER, struct.pack(">I", 4) + b"disk")
    assert c.reply()[1] == REP_ACK
    t, infos = c.go()
    assert t == REP_ACK and 0 in infos and 3 in infos
    size, flags = struct.unpack(">QH", infos[0])
    assert size == 8 * MiB and flags & 1
    c.close()
    # ABORT gets its ACK, then the server hangs up
    c = RawClient(e.sock)
    c.opt(OPT_ABORT)
    assert c.reply()[1] == REP_ACK
    wait_for(c.closed_by_server, 10, what="the server to hang up")
    c.close()
    # a bad option magic is a framing violation
    c = RawClient(e.sock)
    c.s.sendall(b"IHAVEOPX" + bytes(8))
    wait_for(c.closed_by_server, 10, what="the server to hang up")
    assert e.proc.alive()


def test_idle_handshake_is_timed_out(export):
    e = export(size=8 * MiB, extra=("--nbd-handshake-timeout", "1s"))
    busy = RawClient(e.sock)
    assert busy.go()[0] == REP_ACK  # a client that finished its handshake stays
    idle = RawClient(e.sock)        # greeting read, flags sent, then nothing
    wait_for(idle.closed_by_server, 20, what="the idle client to be disconnected")
    time.sleep(1.5)
    busy.request(CMD_FLUSH, 0, 0, cookie=3)
    assert busy.simple_reply()[:2] == (0, 3)
    assert "handshake not finished in time" in e.proc.log()


# ---- lifecycle and command line ---------------------------------------------

def test_sigterm_finishes_requests_and_exits(export):
    e = export(size=8 * MiB)
    c = RawClient(e.sock)
    assert c.go()[0] == REP_ACK
    c.request(CMD_WRITE, 0, 65536, payload=b"s" * 65536, flags=1, cookie=1)  # FUA
    assert c.simple_reply()[0] == 0
    e.proc.signal(signal.SIGTERM)
    assert e.proc.wait(20) == 0
    assert c.closed_by_server()
    assert not os.path.exists(e.sock)  # the socket file is removed
    assert e.read_file(0, 65536) == b"s" * 65536
    assert "closing the backend" in e.proc.log()


def test_sigterm_waits_for_a_write_under_way(export):
    """A WRITE whose payload is still arriving when the server is told to stop
    is received, written and answered before the connection closes."""
    e = export(size=8 * MiB)
    c = RawClient(e.sock)
    assert c.go()[0] == REP_ACK
    c.request(CMD_WRITE, 4096, 8192, cookie=7, payload=b"p" * 4096)  # half the payload
    time.sleep(0.3)
    e.proc.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert e.proc.alive()
    c.s.sendall(b"p" * 4096)
    assert c.simple_reply()[:2] == (0, 7)
    assert c.closed_by_server()
    assert e.proc.wait(20) == 0
    assert e.read_file(4096, 8192) == b"p" * 8192


def test_nbd_export_usage_errors(vstor, tmp_path, sockdir):
    r = vstor("nbd-export", "--socket", os.path.join(sockdir, "x"))
    assert r.returncode == 2 and "nothing to serve: give --image NAME" in r.stderr
    r = vstor("nbd-export", "--image", "x", "--file", tmp_path / "a.img")
    assert r.returncode == 2 and "give only one of --image and --file" in r.stderr
    r = vstor("nbd-export", "--file", tmp_path / "missing.img")
    assert r.returncode == 1 and "missing.img: No such file or directory" in r.stderr
    img = tmp_path / "a.img"
    with open(img, "wb") as f:
        f.truncate(MiB)
    r = vstor("nbd-export", "--file", img, "--bind", "localhost")
    assert r.returncode == 2 and "is not ADDR:PORT" in r.stderr
    r = vstor("nbd-export", "--file", img, "--nbd-buffer-size", "1M")
    assert r.returncode == 2 and "nbd_buffer_size" in r.stderr
    r = vstor("nbd-export", "--help")
    assert r.returncode == 0 and "developer and test mode" in r.stdout


def test_socket_in_use_and_file_locked(export, vstor, sockdir, tmp_path):
    e = export(size=8 * MiB)
    other = tmp_path / "other.img"
    with open(other, "wb") as f:
        f.truncate(MiB)
    r = vstor("nbd-export", "--file", other, "--socket", e.sock)
    assert r.returncode == 1 and "another server is listening there" in r.stderr
    r = vstor("nbd-export", "--file", e.img, "--socket", os.path.join(sockdir, "second"))
    assert r.returncode == 1 and "in use by another process" in r.stderr


def test_map_without_nbd_module(vstor, tmp_path):
    if os.path.exists("/sys/module/nbd"):
        pytest.skip("this kernel has nbd; the missing-module error cannot be shown")
    img = tmp_path / "m.img"
    with open(img, "wb") as f:
        f.truncate(8 * MiB)
    r = vstor("map", "--file", img)
    assert r.returncode == 1
    assert "nbd kernel module is not loaded" in r.stderr
    assert "vstor nbd-export" in r.stderr  # says what to do instead
    r = vstor("map", "--file", img, "--device", "/dev/nbd2", "--foreground")
    assert r.returncode == 1 and "nbd kernel module is not loaded" in r.stderr
    r = vstor("unmap", "/dev/nbd0")
    assert r.returncode == 1 and "nbd kernel module is not loaded" in r.stderr


def test_map_unmap_usage_errors(vstor, tmp_path):
    img = tmp_path / "m.img"
    with open(img, "wb") as f:
        f.truncate(MiB)
    r = vstor("map")
    assert r.returncode == 2 and "nothing to serve" in r.stderr
    r = vstor("map", "--file", img, "--device", "/dev/sda")
    assert r.returncode == 2 and "not an nbd device" in r.stderr
    r = vstor("unmap")
    assert r.returncode == 2
    r = vstor("unmap", "sda1")
    assert r.returncode == 2 and "not an nbd device" in r.stderr
    for cmd in ("map", "unmap"):
        assert vstor(cmd, "--help").returncode == 0
