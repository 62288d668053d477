# SPDX-License-Identifier: GPL-3.0-or-later
"""A whole vstor cluster for integration tests: `vstor mon` members, OSDs on
files (`vstor disk format` + `vstor osd`), pools, images, and the data checker
`osd_verify`, on loopback or on network-namespace hosts. Every process goes
through the `procs` fixture, so it is stopped when the test ends.

    c = Cluster(procs, vstor_bin, tmp_path, mons=1)        # loopback
    c = Cluster(procs, vstor_bin, tmp_path, hosts=netns.make_hosts(3))
    c.add_osds(3)                       # one per host with hosts
    c.pool("rbd", pg_size=2, pg_minsize=1, pg_count=8)
    c.image("img", "64M", "rbd")
    c.wait_active("rbd")
    assert c.verify("img", ops=500).returncode == 0
    c.kill_osd(1); c.start_osd(1)

Used by test_osd.py and test_osd_netns.py; meant for the NBD, serve and demo
tests too.
"""
import json
import os
import signal
import subprocess

from vstor_fixtures import free_port, sanitizer_env, wait_for


class Cluster:
    MON_PORT = 7100  # on namespace hosts (each has its own port space)

    def __init__(self, procs, vstor_bin, tmp, mons=1, hosts=None, lease_ttl="5s",
                 osd_args=(), mon_change_delay="50ms"):
        self.procs, self.bin, self.tmp = procs, vstor_bin, str(tmp)
        self.mon_change_delay = mon_change_delay
        self.hosts, self.lease_ttl, self.osd_args = hosts, lease_ttl, list(osd_args)
        self.verify_bin = os.path.join(os.path.dirname(vstor_bin), "osd", "osd_verify")
        if hosts:
            self.mon_addrs = [f"{h.addr}:{self.MON_PORT}" for h in hosts[:mons]]
        else:
            self.mon_addrs = [f"127.0.0.1:{p}" for p in [free_port() for _ in range(mons)]]
        self.mon_address = ",".join(self.mon_addrs)
        self.mons = [None] * mons
        self.osds = {}  # id -> {"dev", "host", "proc"}
        for i in range(mons):
            self.start_mon(i)
        wait_for(self.leader, 60, interval=0.2, what="a metadata leader")

    # ---- processes ---------------------------------------------------------------

    def _prefix(self, host):
        return host.prefix() if host is not None else ()

    def _mon_host(self, i):
        return self.hosts[i] if self.hosts else None

    def start_mon(self, i):
        members = ",".join(f"{k + 1}={a}" for k, a in enumerate(self.mon_addrs))
        self.mons[i] = self.procs.start(
            "mon", "--id", i + 1, "--address", self.mon_addrs[i], "--members", members,
            "--data-dir", os.path.join(self.tmp, f"mon{i + 1}"),
            "--mon-change-delay", self.mon_change_delay, "--mon-election-timeout", "500ms",
            "--mon-heartbeat-interval", "100ms",
            name=f"mon{i + 1}", prefix=self._prefix(self._mon_host(i)))
        return self.mons[i]

    def kill_mon(self, i, sig=signal.SIGKILL):
        self.mons[i].signal(sig)
        self.mons[i].wait(30)

    def add_osd(self, host=None, size="1G", osd_id=None, format_args=(), args=()):
        """Formats a file for a new OSD (taking the cluster id from the mons) and starts it;
        args: its own flags, after the cluster's osd_args."""
        osd_id = osd_id or (max(self.osds) + 1 if self.osds else 1)
        dev = os.path.join(self.tmp, f"osd{osd_id}.dev")
        subprocess.run(["truncate", "-s", size, dev], check=True)
        r = self.vstor("disk", "format", dev, "--osd-id", osd_id, *format_args,
                       prefix=self._prefix(host))
        assert r.returncode == 0, r.stderr
        self.osds[osd_id] = {"dev": dev, "host": host, "proc": None, "args": list(args)}
        self.start_osd(osd_id)
        return osd_id

    def add_osds(self, n, size="1G", format_args=()):
        ids = []
        for i in range(n):
            host = self.hosts[i % len(self.hosts)] if self.hosts else None
            ids.append(self.add_osd(host=host, size=size, format_args=format_args))
        return ids

    def start_osd(self, osd_id):
        o = self.osds[osd_id]
        args = ["osd", "--device", o["dev"], "--mon-address", self.mon_address,
                "--osd-lease-ttl", self.lease_ttl] + self.osd_args + o.get("args", [])
        if o["host"] is not None:
            args += ["--osd-address", o["host"].addr, "--osd-host", o["host"].ns]
        o["proc"] = self.procs.start(*args, name=f"osd{osd_id}", prefix=self._prefix(o["host"]))
        return o["proc"]

    def kill_osd(self, osd_id, sig=signal.SIGKILL):
        p = self.osds[osd_id]["proc"]
        p.signal(sig)
        p.wait(60)

    def osd_log(self, osd_id):
        return self.osds[osd_id]["proc"].log()

    # ---- commands -----------------------------------------------------------------

    def vstor(self, *args, timeout=120, prefix=()):
        cmd = list(prefix) + [self.bin] + [str(a) for a in args] + [
            "--mon-address", self.mon_address]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=sanitizer_env())

    def ok(self, *args, **kw):
        r = self.vstor(*args, **kw)
        assert r.returncode == 0, f"vstor {' '.join(map(str, args))}: {r.stderr}"
        return r.stdout

    def leader(self):
        for addr in self.mon_addrs:
            host = self.hosts[self.mon_addrs.index(addr)] if self.hosts else None
            r = subprocess.run(
                list(self._prefix(host)) + [self.bin, "meta", "status", "--member", addr,
                                            "--json", "--mon-address", addr,
                                            "--meta-timeout", "2s"],
                capture_output=True, text=True, timeout=30, env=sanitizer_env())
            if r.returncode == 0:
                for st in json.loads(r.stdout):
                    if st.get("state") == "leader":
                        return st.get("id")
        return None

    def cluster_id(self):
        """The cluster's id (the HELLO of a raw connection carries it)."""
        st = json.loads(self.ok("meta", "status", "--json",
                                prefix=self._prefix(self._mon_host(0))))
        return next(int(str(m["cluster_id"]), 16) for m in st if m.get("cluster_id"))

    def kvs(self, key, prefix=False):
        """{key: (JSON value, mod revision)} of key, or of the keys under it with
        prefix; {} when absent or unreadable."""
        args = ["meta", "get", key, "--json"] + (["--prefix"] if prefix else [])
        r = self.vstor(*args, prefix=self._prefix(self._mon_host(0)))
        if r.returncode != 0:
            return {}
        return {kv["key"]: (json.loads(kv["value"]), kv["mod_revision"])
                for kv in json.loads(r.stdout).get("kvs", [])}

    def get(self, key, prefix=False):
        """The JSON value of key (None if absent); with prefix, {key: value}."""
        kvs = self.kvs(key, prefix)
        if prefix:
            return {k: v for k, (v, _) in kvs.items()}
        return kvs[key][0] if key in kvs else None

    def revisions(self, prefix):
        """(the store's revision, {key: version}) of the keys under prefix; a key's
        version counts the writes to it since it was created."""
        r = self.vstor("meta", "get", prefix, "--json", "--prefix", "--keys-only",
                       prefix=self._prefix(self._mon_host(0)))
        assert r.returncode == 0, r.stderr
        o = json.loads(r.stdout)
        return o["revision"], {kv["key"]: kv["version"] for kv in o["kvs"]}

    def wait_osds_registered(self, timeout=60):
        """Every started OSD still running has its osd/state key: a pool created
        before an OSD registers is placed without it and moved when it comes."""
        def registered():
            up = self.get("osd/state/", prefix=True)
            return all(f"osd/state/{i}" in up or not o["proc"] or not o["proc"].alive()
                       for i, o in self.osds.items())
        wait_for(registered, timeout, interval=0.1, what="every running OSD registered")

    def pool(self, name, pg_size, pg_minsize, pg_count, failure_domain="osd", **extra):
        self.wait_osds_registered()
        args = ["pool", "create", name, "--scheme", "replicated", "--pg-size", pg_size,
                "--pg-minsize", pg_minsize, "--pg-count", pg_count, "--failure-domain",
                failure_domain]
        for k, v in extra.items():
            args += ["--" + k.replace("_", "-"), v]
        self.ok(*args, prefix=self._prefix(self._mon_host(0)))
        return self.pool_id(name)

    def pool_id(self, name):
        for pid, p in (self.get("config/pools") or {}).items():
            if p["name"] == name:
                return int(pid)
        return None

    def image(self, name, size, pool):
        self.ok("create", name, "--size", size, "--pool", pool,
                prefix=self._prefix(self._mon_host(0)))

    # ---- PG states ------------------------------------------------------------------

    def pg_states(self, pool):
        """{pg: pg/state value} of a pool."""
        pid = self.pool_id(pool) if isinstance(pool, str) else pool
        out = {}
        for k, v in self.get(f"pg/state/{pid}/", prefix=True).items():
            out[int(k.rsplit("/", 1)[1])] = v
        return out

    def pgs_in(self, pool, want, pg_count=None, current=False):
        """True when every PG of the pool reports a state accepted by want(words).
        With current, each report must also come from the primary of the current
        map (config/pgs), and a clean one must have peered with its whole set: a
        report of an older map (an OSD that joined late moved the PG) does not count."""
        pid = self.pool_id(pool) if isinstance(pool, str) else pool
        pgs = self.get("config/pgs") or {}
        mapped = pgs.get("pools", {}).get(str(pid), {}).get("pgs", [])
        return pgs_match(mapped, self.pg_states(pid), want, pg_count, current)

    def clean_and_final(self, pool):
        """When every PG of the pool is clean on the current map and that map is
        final, the revisions that say so (config/pgs, then each PG's pg/state);
        else None. Final: the monitor has acted on these reports -- no PG keeps
        a history, and the pool's last_clean is its current layout. It records
        last_clean only in a plan that first re-ran placement on every input it
        read, and no PG is clean before its returned OSDs are up in those
        inputs; so PGs clean under interim primaries that placement is about to
        hand back (a set starts with its primary) do not pass
        (docs/monitor.md §3, docs/placement.md §3)."""
        pid = self.pool_id(pool) if isinstance(pool, str) else pool
        pgmap, pgs_rev = self.kvs("config/pgs").get("config/pgs", (None, 0))
        pp = (pgmap or {}).get("pools", {}).get(str(pid), {})
        mapped = pp.get("pgs", [])
        st = {int(k.rsplit("/", 1)[1]): v
              for k, v in self.kvs(f"pg/state/{pid}/", prefix=True).items()}
        if not pgs_match(mapped, {i: v for i, (v, _) in st.items()},
                         lambda w: w == ["active"], None, True) or \
                any(m.get("history") for m in mapped) or \
                pp.get("last_clean") != [m["osd_set"] for m in mapped]:
            return None
        return pgs_rev, tuple(st[i][1] for i in range(len(mapped)))

    def wait_active(self, pool, timeout=120, clean=False):
        """Every PG of the pool active on the current map. With clean, every PG
        clean on a final map (clean_and_final), seen twice in a row with the
        same revisions: a test may then act on the map's primaries."""
        if not clean:
            wait_for(lambda: self.pgs_in(pool, lambda w: w[0] == "active", current=True),
                     timeout, interval=0.3, what=f"every PG of {pool} active")
            return
        seen = [None]

        def settled():
            prev, seen[0] = seen[0], self.clean_and_final(pool)
            return seen[0] is not None and seen[0] == prev
        wait_for(settled, timeout, interval=0.3,
                 what=f"every PG of {pool} clean on a final map")

    # ---- data ------------------------------------------------------------------------

    def verify_args(self, image, **kw):
        args = [self.verify_bin, "--mon", ",".join(self.mon_addrs), "--image", image]
        for k, v in kw.items():
            args += ["--" + k.replace("_", "-")] + ([] if v is True else [str(v)])
        return args

    def verify(self, image, timeout=300, host=None, **kw):
        """Runs osd_verify to completion (writes then checks, or --check FILE)."""
        return subprocess.run(list(self._prefix(host)) + self.verify_args(image, **kw),
                              capture_output=True, text=True, timeout=timeout,
                              env=sanitizer_env())

    def start_verify(self, image, name="writer", host=None, **kw):
        """Starts osd_verify in the background (a procs process)."""
        return self.procs.start(*(list(self._prefix(host)) + self.verify_args(image, **kw)),
                                name=name, vstor=False)


def pgs_match(mapped, st, want, pg_count=None, current=False):
    """Cluster.pgs_in on a map's PG list (mapped) and the pool's {pg: pg/state
    value} (st)."""
    n = pg_count or len(mapped)
    if not (n > 0 and len(st) == n and all(want(s["state"]) for s in st.values())):
        return False
    if not current:
        return True
    for i, m in enumerate(mapped):
        s = st.get(i)
        if s is None or s.get("primary") != m["primary"]:
            return False
        if s["state"] == ["active"] and \
                sorted(s.get("peers", [])) != sorted(o for o in m["osd_set"] if o):
            return False
    return True


def ok(r):
    """Asserts that an osd_verify run (Cluster.verify) passed; returns it."""
    assert r.returncode == 0, f"osd_verify failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "verified" in r.stdout
    return r


def progress(proc):
    """The last 'progress N' an osd_verify process printed (0 if none)."""
    n = 0
    for line in proc.log().splitlines():
        if line.startswith("progress "):
            n = int(line.split()[1])
    return n


def wait_progress(proc, more_than, timeout):
    def ready():
        if progress(proc) > more_than:
            return True
        if proc.alive():
            return False
        assert progress(proc), f"the writer exited before any progress:\n{proc.log()}"
        return True
    return wait_for(ready, timeout, interval=0.2, what=f"the writer past {more_than} ops")


def assert_debug_option_refused(procs, vstor_bin, tmp_path, osd_args):
    """An OSD given a test-only option (OSD_ARGS) without enable_debug refuses
    to start and says why: such hooks cannot be switched on by accident."""
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, osd_args=osd_args)
    dev = tmp_path / "osd1.dev"
    subprocess.run(["truncate", "-s", "256M", str(dev)], check=True)
    assert c.vstor("disk", "format", dev, "--osd-id", 1).returncode == 0
    c.osds[1] = {"dev": str(dev), "host": None, "proc": None}
    p = c.start_osd(1)
    assert p.wait(60) != 0
    assert "needs enable_debug" in p.log(), p.log()
