#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The metadata service against etcd 3.4, in one run, on this machine.

Starts 3 `vstor mon` members and 3 etcd members on loopback (data on the same
disk, default timeouts for both), then, alternating between the two for
--rounds rounds so machine noise hits both alike:
  * `vstor meta bench` (put latency, linearizable get latency, put throughput
    with 64 clients, watch delay) against each -- etcd through its JSON
    gateway with keep-alive connections, to its leader;
  * failover: kill -9 of the leader, then a CLI put (`vstor meta put` /
    `etcdctl put`, all endpoints) every 20 ms until one succeeds; the time
    from the kill to that success;
and finally, on fresh clusters, the memory (VmRSS) and database size of each
member after writing 100,000 keys of 100 bytes. Prints a Markdown table of medians and ratios
(and --json the raw figures).

    raft/bench/meta_vs_etcd.py --vstor build/release/vstor/vstor
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
ENV = dict(os.environ, VSTOR_CONFIG="/dev/null.absent", ETCDCTL_API="3")


def free_ports(n, start):
    """n consecutive free TCP ports from `start` (below the ephemeral range)."""
    port = start
    while True:
        ok = True
        for p in range(port, port + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return list(range(port, port + n))
        port += n + 7


class Cluster:
    def __init__(self, name, tmp):
        self.name, self.tmp, self.procs = name, tmp, {}

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


class Vstor(Cluster):
    def __init__(self, binary, tmp, ports):
        super().__init__("vstor", tmp)
        self.bin, self.ports = binary, ports
        self.addrs = [f"127.0.0.1:{p}" for p in ports]
        self.members = ",".join(f"{i + 1}={a}" for i, a in enumerate(self.addrs))
        self.endpoints = ",".join(self.addrs)

    def start(self, i):
        d = os.path.join(self.tmp, f"vstor{i}")
        log = open(os.path.join(self.tmp, f"vstor{i}.log"), "a")
        self.procs[i] = subprocess.Popen(
            [self.bin, "mon", "--id", str(i + 1), "--address", self.addrs[i], "--members",
             self.members, "--data-dir", d, "--log-level", os.environ.get("BENCH_LOG_LEVEL", "warn")],
            stdout=log, stderr=log, env=ENV)

    def data_bytes(self, i):
        d = os.path.join(self.tmp, f"vstor{i}", "mon")
        return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))

    def db_bytes(self, i):
        """The database file alone (meta.db, without its WAL)."""
        return os.path.getsize(os.path.join(self.tmp, f"vstor{i}", "mon", "meta.db"))

    def bench(self, *args):
        return run_json([self.bin, "meta", "bench", "--json", "--mon-address", self.endpoints,
                         *map(str, args)])

    def leader(self):
        for i, a in enumerate(self.addrs):
            if self.procs[i].poll() is not None:
                continue
            r = subprocess.run([self.bin, "meta", "status", "--member", a, "--json",
                                "--mon-address", a, "--meta-timeout", "1s"],
                               capture_output=True, text=True, env=ENV)
            if r.returncode == 0 and json.loads(r.stdout)[0].get("state") == "leader":
                return i
        return None

    def put_ok(self, key):
        r = subprocess.run([self.bin, "meta", "put", key, "v", "--mon-address", self.endpoints,
                            "--meta-timeout", "300ms"], capture_output=True, env=ENV)
        return r.returncode == 0


class Etcd(Cluster):
    def __init__(self, tmp, client_ports, peer_ports):
        super().__init__("etcd", tmp)
        self.cports, self.pports = client_ports, peer_ports
        self.initial = ",".join(f"e{i}=http://127.0.0.1:{p}" for i, p in enumerate(peer_ports))
        self.endpoints = ",".join(f"127.0.0.1:{p}" for p in client_ports)

    def start(self, i):
        d = os.path.join(self.tmp, f"etcd{i}")
        state = "existing" if os.path.exists(d) else "new"
        log = open(os.path.join(self.tmp, f"etcd{i}.log"), "a")
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", f"e{i}", "--data-dir", d,
             "--listen-client-urls", f"http://127.0.0.1:{self.cports[i]}",
             "--advertise-client-urls", f"http://127.0.0.1:{self.cports[i]}",
             "--listen-peer-urls", f"http://127.0.0.1:{self.pports[i]}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.pports[i]}",
             "--initial-cluster", self.initial, "--initial-cluster-state", state,
             "--log-level", "error"], stdout=log, stderr=log)

    def data_bytes(self, i):
        total = 0
        for root, _, files in os.walk(os.path.join(self.tmp, f"etcd{i}")):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        return total

    def db_bytes(self, i):
        """The bbolt database file alone (member/snap/db, without the WAL)."""
        return os.path.getsize(os.path.join(self.tmp, f"etcd{i}", "member", "snap", "db"))

    def bench(self, vstor_bin, *args):
        return run_json([vstor_bin, "meta", "bench", "--json", "--target", "etcd",
                         "--endpoints", self.endpoints, *map(str, args)])

    def leader(self):
        r = subprocess.run([ETCDCTL, "--endpoints", self.endpoints, "endpoint", "status", "-w",
                            "json", "--command-timeout=1s"], capture_output=True, text=True,
                           env=ENV)
        try:
            st = json.loads(r.stdout)
        except ValueError:
            return None
        for e in st:
            if e["Status"]["header"]["member_id"] == e["Status"]["leader"]:
                return self.cports.index(int(e["Endpoint"].rsplit(":", 1)[1]))
        return None

    def put_ok(self, key):
        r = subprocess.run([ETCDCTL, "--endpoints", self.endpoints, "put", key, "v",
                            "--command-timeout=300ms", "--dial-timeout=300ms"],
                           capture_output=True, env=ENV)
        return r.returncode == 0


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stderr}")
    return json.loads(r.stdout)


def wait_leader(c, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        i = c.leader()
        if i is not None:
            return i
        time.sleep(0.2)
    raise RuntimeError(f"{c.name}: no leader")


def failover(c):
    """kill -9 of the leader -> the first CLI put that succeeds."""
    i = wait_leader(c)
    assert c.put_ok("failover/warm")
    t0 = time.monotonic()
    c.procs[i].send_signal(signal.SIGKILL)
    c.procs[i].wait()
    n = 0
    while not c.put_ok(f"failover/{n}"):
        n += 1
        if time.monotonic() - t0 > 60:
            raise RuntimeError(f"{c.name}: no write succeeded within 60 s of killing {i}")
        time.sleep(0.02)
    took = time.monotonic() - t0
    c.start(i)
    wait_leader(c)
    time.sleep(1.0)  # the restarted member catches up before the next round
    return took


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vstor", default="build/release/vstor/vstor")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="meta_vs_etcd_", dir=os.environ.get("TMPDIR", "/var/tmp"))
    vp = free_ports(3, 27100)
    ep = free_ports(6, vp[-1] + 10)
    vs = Vstor(os.path.abspath(a.vstor), tmp, vp)
    et = Etcd(tmp, ep[:3], ep[3:])
    raw = {"vstor": [], "etcd": [], "failover": {"vstor": [], "etcd": []}}
    try:
        for i in range(3):
            vs.start(i)
            et.start(i)
        wait_leader(vs)
        wait_leader(et)
        args = ["--ops", a.ops, "--seconds", a.seconds, "--clients", 64, "--value-size", 100]
        for r in range(a.rounds):
            raw["vstor"].append(vs.bench(*args))
            raw["etcd"].append(et.bench(a.vstor, *args))
            print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
        for r in range(a.failovers):
            for c in (vs, et):
                raw["failover"][c.name].append(failover(c))
            print(f"failover {r + 1}/{a.failovers}: {raw['failover']}", file=sys.stderr)
        # Memory and size on fresh clusters, so they hold the --keys keys only.
        vs.stop_all()
        et.stop_all()
        fresh = os.path.join(tmp, "fresh")
        os.mkdir(fresh)
        vp = free_ports(3, ep[-1] + 10)
        ep = free_ports(6, vp[-1] + 10)
        vs = Vstor(os.path.abspath(a.vstor), fresh, vp)
        et = Etcd(fresh, ep[:3], ep[3:])
        for i in range(3):
            vs.start(i)
            et.start(i)
        wait_leader(vs)
        wait_leader(et)
        for c, fill in ((vs, lambda: vs.bench("--workload", "fill", "--keys", a.keys)),
                        (et, lambda: et.bench(a.vstor, "--workload", "fill", "--keys", a.keys))):
            fill()
            time.sleep(2)
            raw[c.name + "_size"] = [{"rss_kib": rss_kib(c.procs[i].pid),
                                      "data_bytes": c.data_bytes(i),
                                      "db_bytes": c.db_bytes(i)} for i in range(3)]
    finally:
        vs.stop_all()
        et.stop_all()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    report(raw, a)


def pick(runs, workload, field):
    return median([r[workload][field] for r in runs if isinstance(r.get(workload), dict)])


def report(raw, a):
    if a.json:
        print(json.dumps(raw, indent=1))
    v, e = raw["vstor"], raw["etcd"]
    rows = [
        ("put latency p50 (ms)", pick(v, "put_latency", "p50_ms"),
         pick(e, "put_latency", "p50_ms")),
        ("put latency p99 (ms)", pick(v, "put_latency", "p99_ms"),
         pick(e, "put_latency", "p99_ms")),
        ("linearizable get p50 (ms)", pick(v, "get_latency", "p50_ms"),
         pick(e, "get_latency", "p50_ms")),
        ("linearizable get p99 (ms)", pick(v, "get_latency", "p99_ms"),
         pick(e, "get_latency", "p99_ms")),
        ("puts/s, 64 clients", pick(v, "put_throughput", "ops_per_s"),
         pick(e, "put_throughput", "ops_per_s")),
        ("watch delay after put reply p50 (ms)", pick(v, "watch_delay", "p50_ms"),
         pick(e, "watch_delay", "p50_ms")),
        ("watch delay after put reply p99 (ms)", pick(v, "watch_delay", "p99_ms"),
         pick(e, "watch_delay", "p99_ms")),
        ("failover kill -9 -> first write, median (s)", median(raw["failover"]["vstor"]),
         median(raw["failover"]["etcd"])),
    ]
    for what, key in (("RSS per 100k keys (MiB)", "rss_kib"),
                      ("database file per 100k keys (MiB)", "db_bytes"),
                      ("data dir (database + WAL) per 100k keys (MiB)", "data_bytes")):
        div = 1024 if key == "rss_kib" else 1 << 20
        vv = max(m[key] for m in raw.get("vstor_size", [{key: 0}])) / div * 100000 / a.keys
        ee = max(m[key] for m in raw.get("etcd_size", [{key: 0}])) / div * 100000 / a.keys
        rows.append((what + " (largest member)", vv, ee))
    print(f"| figure | vstor | etcd 3.4 | vstor / etcd |\n|---|---|---|---|")
    for name, x, y in rows:
        ratio = x / y if y else float("nan")
        print(f"| {name} | {x:.3f} | {y:.3f} | {ratio:.2f} |")
    print(f"\n{a.rounds} rounds of bench (medians), {a.failovers} failovers each; "
          f"{len(raw['failover']['vstor'])} vstor and {len(raw['failover']['etcd'])} etcd.")


if __name__ == "__main__":
    main()
