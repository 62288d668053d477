# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest fixtures for multi-process vstor tests (loaded by conftest.py).

Fixtures:
  vstor_bin   path of the vstor binary under test ($VSTOR_BIN or the newest build)
  vstor       run a vstor command to completion: vstor("config", "--json") -> CompletedProcess
  procs       start long-running processes in the test's temp dir; every one of them
              is stopped (SIGTERM, then SIGKILL) when the test ends, pass or fail
  netns       make_hosts(n): n network namespaces joined by a bridge, each with a
              real address; removed when the test ends, pass or fail

All names that touch the host (namespaces, interfaces) carry this process's id,
so parallel sessions on one machine never collide.
"""
import itertools
import os
import shutil
import signal
import struct
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_vstor_bin():
    env = os.environ.get("VSTOR_BIN")
    if env:
        return env
    for flavour in ("asan", "debug", "release"):
        p = os.path.join(ROOT, "build", flavour, "vstor", "vstor")
        if os.path.exists(p):
            return p
    raise RuntimeError("no vstor binary: build one (make asan) or set VSTOR_BIN")


@pytest.fixture(scope="session")
def vstor_bin():
    return find_vstor_bin()


def sanitizer_env():
    env = dict(os.environ)
    # Leaks in a process killed by a signal are not findings; crashes are.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env["VSTOR_CONFIG"] = os.devnull + ".absent"  # never read the host's /etc/vstor
    return env


@pytest.fixture
def vstor(vstor_bin):
    def run(*args, timeout=60, check=False, input=None, prefix=()):
        cmd = list(prefix) + [vstor_bin] + [str(a) for a in args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=check, input=input, env=sanitizer_env())
    return run


class Proc:
    """A started process whose output goes to a log file in the test dir."""

    def __init__(self, name, popen, log_path):
        self.name, self.popen, self.log_path = name, popen, log_path

    @property
    def pid(self):
        return self.popen.pid

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.popen.pid, sig)

    def wait(self, timeout):
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        return self.popen.returncode


class ProcSet:
    def __init__(self, workdir, vstor_bin):
        self.workdir, self.vstor_bin, self.procs = workdir, vstor_bin, []
        self.counter = itertools.count()

    def start(self, *args, name=None, prefix=(), vstor=True, env=None):
        """Starts `vstor ARGS...` (or ARGS as a plain command with vstor=False),
        optionally under a prefix such as ("ip", "netns", "exec", "ns1")."""
        name = name or f"proc{next(self.counter)}"
        log_path = os.path.join(self.workdir, f"{name}.log")
        cmd = list(prefix) + ([self.vstor_bin] if vstor else []) + [str(a) for a in args]
        full_env = sanitizer_env()
        full_env.update(env or {})
        log = open(log_path, "w")
        popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                 env=full_env, start_new_session=True)
        log.close()
        p = Proc(name, popen, log_path)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in reversed(self.procs):
            tree = descendants(p.pid)  # serve's children run in sessions of their own
            try:
                p.stop(timeout=5)
            except Exception:  # never let one stuck process keep the others alive
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid, started in tree:  # normally gone: their supervisor stopped them
                st = proc_stat(pid)
                if st and st[1] == started:  # the same process, not a reused pid
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def proc_stat(pid):
    """(ppid, start time) of a living process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid):
    """(pid, start time) of every living descendant of pid, from /proc."""
    stat = {int(d): proc_stat(d) for d in os.listdir("/proc") if d.isdigit()}
    out, pending = [], [pid]
    while pending:
        p = pending.pop()
        kids = [c for c, st in stat.items() if st and st[0] == p]
        out += [(c, stat[c][1]) for c in kids]
        pending += kids
    return out


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item, so fixtures can see the outcome."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


BIG_FILE = 4 << 20


def remove_big_files(root):
    """Deletes the device images a passed test leaves (OSD files are GiBs each and
    pytest keeps three basetemps); logs and small files stay for reading."""
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            try:
                if os.path.isfile(path) and not os.path.islink(path) \
                        and not f.endswith(".log") \
                        and os.stat(path).st_blocks * 512 >= BIG_FILE:
                    os.unlink(path)
            except OSError:
                pass


@pytest.fixture
def procs(request, tmp_path, vstor_bin):
    ps = ProcSet(str(tmp_path), vstor_bin)
    yield ps
    ps.cleanup()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        remove_big_files(str(tmp_path))


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate until it returns a truthy value; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


_port_cursor = [10000 + (os.getpid() * 37) % 20000]


def free_port():
    """A TCP port on 127.0.0.1 that is free now, below the kernel's ephemeral
    range (32768+) so no outgoing connection can be holding it. Successive
    calls return different ports."""
    import socket
    for _ in range(2000):
        _port_cursor[0] = 10000 + (_port_cursor[0] - 10000 + 1) % 22000
        port = _port_cursor[0]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below 32768")


def sh(*cmd, check=True, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=check,
                          **kw)


class Host:
    """One network namespace: a host with eth0 at `addr` on the shared bridge."""

    def __init__(self, ns, addr, switch_port, switch_ns):
        self.ns, self.addr, self.switch_port, self.switch_ns = ns, addr, switch_port, switch_ns

    def prefix(self):
        return ("ip", "netns", "exec", self.ns)

    def run(self, *cmd, check=True, timeout=30):
        return sh(*self.prefix(), *cmd, check=check, timeout=timeout)

    def link_down(self):
        """Cuts this host off the bridge (its cable unplugged)."""
        sh("ip", "-n", self.switch_ns, "link", "set", self.switch_port, "down")

    def link_up(self):
        sh("ip", "-n", self.switch_ns, "link", "set", self.switch_port, "up")

    def nft_cut(self, other_addr=None):
        """Drops every packet between this host and other_addr, or every packet
        on eth0 without one (in this host's namespace): no link goes down,
        established connections just hear nothing more."""
        nft = (*self.prefix(), "nft")
        sh(*nft, "add", "table", "inet", "vscut")
        for chain, hook, match in (("in", "input", "saddr"), ("out", "output", "daddr")):
            sh(*nft, "add", "chain", "inet", "vscut", chain, "{", "type", "filter", "hook",
               hook, "priority", "0", ";", "}")
            what = ("ip", match, other_addr) if other_addr else \
                ("iifname" if chain == "in" else "oifname", "eth0")
            sh(*nft, "add", "rule", "inet", "vscut", chain, *what, "drop")

    def nft_heal(self):
        sh(*self.prefix(), "nft", "delete", "table", "inet", "vscut", check=False)


class NetnsSet:
    SUBNET = "10.{a}.{b}"

    def __init__(self):
        self.tag = f"vs{os.getpid() % 100000}"
        self.hosts, self.created = [], []
        self.counter = itertools.count()

    def make_hosts(self, n):
        """Creates n hosts on one new bridge; returns [Host]."""
        k = next(self.counter)
        switch = f"{self.tag}s{k}"
        sh("ip", "netns", "add", switch)
        self.created.append(switch)
        sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "br0", "up")
        # One /24 per set, from the pid, inside 10.64.0.0/10.
        a = 64 + (os.getpid() % 64)
        b = (os.getpid() // 64 + k) % 250
        hosts = []
        for i in range(n):
            ns = f"{self.tag}s{k}h{i}"
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            port = f"p{i}"
            sh("ip", "-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            sh("ip", "-n", switch, "link", "set", port, "master", "br0")
            sh("ip", "-n", switch, "link", "set", port, "up")
            addr = f"10.{a}.{b}.{i + 1}"
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            hosts.append(Host(ns, addr, port, switch))
        self.hosts += hosts
        return hosts

    def cleanup(self):
        for ns in reversed(self.created):
            # Kill anything still running inside, then delete the namespace.
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        self.created = []


def netns_available():
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def netns():
    if not netns_available():
        pytest.skip("network namespaces need root and iproute2")
    ns = NetnsSet()
    try:
        yield ns
    finally:
        ns.cleanup()


def list_netns():
    out = sh("ip", "netns", "list", check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


# ---- Raw frames of the vstor protocol (docs/protocol.md), for bad-input tests ----

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frame(opcode, ident, body, meta_len=0, data_len=0, flags=0):
    """A header: magic, version 1, opcode, id, flags (0: a request; 1: a
    reply), the payload lengths and the op fields (body, or a reply's retval);
    the payload, if any, is the caller's to send."""
    h = bytearray(128)
    struct.pack_into("<IHHQIII", h, 0, 0x314E5356, 1, opcode, ident, flags, meta_len, data_len)
    h[32:32 + len(body)] = body
    struct.pack_into("<I", h, 124, crc32c(bytes(h[:124])))
    return bytes(h)


def hello_body(cluster_id, role, node_id=0, block_size=0, granularity=0):
    """HELLO's op fields: role 1 client, 2 OSD, 3 mon."""
    return (struct.pack("<Q", cluster_id) + bytes(8) +
            struct.pack("<HHB3xQQII", 1, 1, role, node_id, 0, block_size, granularity))


def recv_exact(s, n):
    """n bytes from socket s, or fewer if it closes first."""
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out
