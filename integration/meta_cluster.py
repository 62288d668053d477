# SPDX-License-Identifier: GPL-3.0-or-later
"""A metadata service cluster of real `vstor mon` processes, one per network
namespace (the netns fixture), plus a client namespace that runs `vstor meta`.
Used by test_meta_*.py."""
import json
import os
import signal
import time

from vstor_fixtures import wait_for

PORT = 4000
# Short timeouts keep the tests quick; the benchmark uses the defaults.
FAST = ("--mon-election-timeout", "400ms", "--mon-heartbeat-interval", "40ms")


class Member:
    def __init__(self, mid, host, data_dir):
        self.id, self.host, self.data_dir = mid, host, data_dir
        self.addr = f"{host.addr}:{PORT}"
        self.proc = None


class MetaCluster:
    def __init__(self, netns, procs, vstor_bin, tmp_path, n, extra=(), hosts=None):
        self.procs, self.vstor_bin, self.tmp = procs, vstor_bin, str(tmp_path)
        self.hosts = hosts or netns.make_hosts(n + 1)
        self.client = self.hosts[-1]
        self.members = [Member(i + 1, self.hosts[i], os.path.join(self.tmp, f"m{i + 1}"))
                        for i in range(n)]
        self.extra = tuple(extra)
        self.started = 0

    def member_list(self, members=None):
        return ",".join(f"{m.id}={m.addr}" for m in (members or self.members))

    def mon_addresses(self):
        return ",".join(m.addr for m in self.members)

    def start(self, i, init=True, members=None, extra=(), alone=False):
        """init: give the member list (every member the same one); alone: the
        first member bootstraps alone and adds the others (--init)."""
        m = self.members[i]
        args = ["mon", "--id", m.id, "--address", m.addr, "--data-dir", m.data_dir,
                "--log-level", "info", *FAST, *self.extra, *extra]
        if init or alone:
            args += ["--members", self.member_list(members)]
        if alone:
            args.append("--init")
        self.started += 1
        m.proc = self.procs.start(*args, name=f"mon{m.id}-{self.started}",
                                  prefix=m.host.prefix())
        return m.proc

    def start_all(self, init=True):
        for i in range(len(self.members)):
            self.start(i, init=init)
        return self.wait_leader()

    def kill(self, i):
        p = self.members[i].proc
        p.signal(signal.SIGKILL)
        p.wait(10)

    def stop(self, i):
        return self.members[i].proc.stop()

    def alive(self, i):
        p = self.members[i].proc
        return p is not None and p.alive()

    def vstor(self, *args, timeout=60, host=None):
        import subprocess
        from vstor_fixtures import sanitizer_env
        h = host or self.client
        cmd = list(h.prefix()) + [self.vstor_bin] + [str(a) for a in args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=sanitizer_env())

    def meta(self, *args, timeout=60, mons=None, meta_timeout="10s"):
        return self.vstor("meta", *args, "--mon-address", mons or self.mon_addresses(),
                          "--meta-timeout", meta_timeout, timeout=timeout)

    def meta_ok(self, *args, **kw):
        r = self.meta(*args, **kw)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def status(self, i, timeout="2s"):
        r = self.meta("status", "--member", self.members[i].addr, "--json",
                      meta_timeout=timeout)
        if r.returncode != 0:
            return None
        st = json.loads(r.stdout)[0]
        return None if "error" in st else st

    def leader(self, among=None):
        """Index of the member that says it is leader (and is alive), or None."""
        for i in among if among is not None else range(len(self.members)):
            if not self.alive(i):
                continue
            st = self.status(i)
            if st and st["state"] == "leader":
                return i
        return None

    def wait_leader(self, timeout=30, among=None):
        def found():
            i = self.leader(among)
            return None if i is None else (i,)  # index 0 is falsy
        return wait_for(found, timeout, interval=0.2, what="a leader")[0]

    def get(self, key, serializable=False, member=None):
        args = ["get", key, "--json"] + (["--serializable"] if serializable else [])
        mons = self.members[member].addr if member is not None else None
        r = self.meta(*args, mons=mons)
        assert r.returncode == 0, r.stderr
        kvs = json.loads(r.stdout)["kvs"]
        return kvs[0]["value"] if kvs else None

    def count(self, prefix, member=None):
        mons = self.members[member].addr if member is not None else None
        args = ["get", prefix, "--prefix", "--count-only"]
        if member is not None:
            args.append("--serializable")
        r = self.meta(*args, mons=mons, meta_timeout="3s")
        return int(r.stdout) if r.returncode == 0 else None

    def wait_converged(self, prefix, want, members, timeout=60):
        wait_for(lambda: all(self.count(prefix, member=i) == want for i in members), timeout,
                 interval=0.3, what=f"members {members} to hold {want} keys under {prefix}")
