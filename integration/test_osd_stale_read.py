# SPDX-License-Identifier: GPL-3.0-or-later
"""No stale read from a replaced primary (the read lease, docs/data-path.md §3).

Five network-namespace hosts: the mon (and the writer W) on hosts[0], osd.1-3
on hosts[1..3] (failure domain host), the reader R alone on hosts[4]. Two
pools: pg_size 3 / pg_minsize 2 and pg_size 2 / pg_minsize 1, four PGs each.

A known value V1 is written to one block of each pool whose PG has osd.1 as
its primary X. X's host is then cut off (nftables) from the mon host and from
the other OSD hosts; the path between X and R stays open. R is a raw-frame
reader (docs/protocol.md): it speaks to X directly, without a map, and
records X's raw answer to every READ, so nothing between X and the check can
hide an old value. W writes V2 to both blocks through libvstor; that is
acknowledged only once the mon moved the PGs to a new primary and it
activated. From then until the cut heals (X cannot hear of the change), every
answer X gives R must be an error or nothing -- never V1. The test asserts
the window it relies on: R read V1 from X after the cut, X's last V1 answer
came before the new primary activated, and X answered R after the
acknowledgement and before it learnt that its PGs had moved. After the heal
every PG must come back clean and every read return V2.

Two modes: `capped`, the production keepalive, which makes X leave ACTIVE
about a second after the cut; and `lease_only`, where X runs with the
test-only `debug_keepalive_uncapped` so that it stays ACTIVE until after the
heal and the read lease alone refuses R's reads (with the lease check
disabled, this mode reads V1 after the acknowledgement)."""
import ctypes
import datetime
import os
import select
import socket
import struct
import threading
import time

import pytest

from vstor_cluster import Cluster, assert_debug_option_refused
from vstor_fixtures import frame, hello_body, recv_exact, wait_for

OP_HELLO, OP_PING, OP_READ = 1, 2, 16
REPLY = 1
VS_EPGINACTIVE = -4012
CLONE_NEWNET = 0x40000000
LEN = 4096  # the bytes of each block that V1 and V2 write


def pattern(seed, n=LEN):
    """osd_verify --blk-write's bytes for a seed (osd_verify.c pattern())."""
    return bytes((i * 7 + seed * 131 + (i >> 9)) & 0xff for i in range(n))


V1, V2 = 1, 2
PATTERNS = {V1: pattern(V1), V2: pattern(V2)}


def utc(t):
    """A time.time() as the daemons' log lines stamp it (ISO, sortable with them)."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def stamps(log, text):
    """The timestamps (ISO text) of the log lines containing text."""
    return [line.split()[0] for line in log.splitlines() if text in line]


def enter_netns(host):
    """Moves the calling thread (only it) into host's network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{host.ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


class RawReader:
    """A client of one OSD alone, in a thread inside a host's namespace: READs
    of [offset, offset + LEN) of each (inode, offset) target in turn, one at a
    time, each with a deadline. Every attempt is recorded as a dict: sent and
    got (time.time(); got None when no answer came within the deadline), the
    target, rc (the reply's retval, or "stall" / "closed" / "connect"), and
    what it held ("V1", "V2", "other"; None unless rc is 0). PINGs of the OSD
    are answered, so that it keeps the connection."""

    def __init__(self, host, addr, cluster_id, targets, deadline=1.0, gap=0.02):
        self.host, self.addr, self.cluster_id = host, addr, cluster_id
        self.targets, self.deadline, self.gap = targets, deadline, gap
        self.reads, self.stop_ev, self.error = [], threading.Event(), None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the raw reader did not stop"
        assert self.error is None, self.error
        return self.reads

    def _run(self):
        try:
            enter_netns(self.host)
            self._loop()
        except Exception as e:  # reported by stop()
            self.error = repr(e)

    def _connect(self):
        ip, port = self.addr.rsplit(":", 1)
        s = socket.create_connection((ip, int(port)), timeout=self.deadline)
        s.sendall(frame(OP_HELLO, 1, hello_body(self.cluster_id, 1)))
        h = recv_exact(s, 128)
        if len(h) < 128 or struct.unpack_from("<i", h, 32)[0] != 0:
            s.close()
            raise ConnectionError("handshake refused")
        return s

    def _loop(self):
        s, ident, n = None, 100, 0
        while not self.stop_ev.is_set():
            inode, off = self.targets[n % len(self.targets)]
            n += 1
            rec = {"sent": time.time(), "got": None, "target": (inode, off), "rc": None,
                   "held": None}
            try:
                if s is None:
                    s = self._connect()
                ident += 1
                s.sendall(frame(OP_READ, ident, struct.pack("<QQIIQ", inode, off, LEN, 0, 0)))
                rec["rc"], rec["held"] = self._answer(s, ident, rec["sent"] + self.deadline)
                rec["got"] = time.time() if rec["rc"] != "stall" else None
            except (OSError, ConnectionError) as e:
                rec["rc"] = "connect" if s is None else "closed"
                rec["error"] = str(e)
            if rec["rc"] in ("stall", "closed", "connect") and s is not None:
                s.close()
                s = None
            self.reads.append(rec)
            self.stop_ev.wait(self.gap if rec["rc"] != "connect" else 0.1)
        if s is not None:
            s.close()

    def _answer(self, s, ident, until):
        """(retval, what it held) of the reply to ident, or ("stall", None)."""
        while True:
            left = until - time.time()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                return "stall", None
            s.settimeout(max(until - time.time(), 0.05))
            h = recv_exact(s, 128)
            if len(h) < 128:
                raise ConnectionError("closed by the OSD")
            _, _, opcode, rid, flags, meta_len, data_len = struct.unpack_from("<IHHQIII", h)
            payload = recv_exact(s, meta_len + data_len)
            if len(payload) < meta_len + data_len:
                raise ConnectionError("closed by the OSD mid-reply")
            if not flags & REPLY:
                if opcode == OP_PING:
                    s.sendall(frame(OP_PING, rid, b"", flags=REPLY))  # success, no payload
                continue
            if rid != ident:
                continue  # a late answer to an attempt that stalled
            rc = struct.unpack_from("<i", h, 32)[0]
            if rc != 0:
                return rc, None
            data = payload[meta_len:]
            held = next((f"V{k}" for k, p in PATTERNS.items() if data == p), "other")
            return 0, held


def raw_read_once(host, addr, cluster_id, target):
    """One RawReader attempt from host (in a thread of its own): the record."""
    out = {}

    def run():
        try:
            enter_netns(host)
            r = RawReader(host, addr, cluster_id, [target])
            s = r._connect()
            try:
                s.sendall(frame(OP_READ, 2, struct.pack("<QQIIQ", *target, LEN, 0, 0)))
                out["rc"], out["held"] = r._answer(s, 2, time.time() + 5)
            finally:
                s.close()
        except (OSError, ConnectionError) as e:
            out["rc"], out["held"] = "error", str(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(15)
    return out.get("rc"), out.get("held")


def timeline_of(reads, t0, names):
    """R's reads as runs of equal outcomes per block (names: target -> its
    name), times relative to t0."""
    out, run = [], None
    for r in sorted(reads, key=lambda r: (r["target"], r["sent"])):
        key = (r["target"], r["rc"], r["held"])
        if run and run[0] == key:
            run[2], run[3] = r, run[3] + 1
        else:
            if run:
                out.append(run)
            run = [key, r, r, 1]
    if run:
        out.append(run)
    return [f"R {names[k[0]]}: sent +{a['sent'] - t0:.3f} .. +{b['sent'] - t0:.3f}: "
            f"{n} x rc {k[1]} {k[2] or ''}" for k, a, b, n in out]


@pytest.mark.netns
@pytest.mark.parametrize("mode", ["capped", "lease_only"])
def test_no_stale_read_from_replaced_primary(procs, vstor_bin, tmp_path, netns, mode):
    """X is osd.1 (primaries are spread evenly: every OSD is the primary of
    at least one of the four PGs of each pool). mode capped: the OSDs as
    configured in production, whose keepalive (at most osd_lease_ttl/5)
    makes X leave ACTIVE about a second after the cut, before the mon even
    moves its PGs. lease_only: X alone runs with the test-only
    debug_keepalive_uncapped and 10 s keepalives, so it stays ACTIVE until
    after the heal, long after V2 was acknowledged, and only the read lease
    (rule R4 of vstor/osd/osd_lease.h) stands between R and V1."""
    t_begin = time.monotonic()
    hosts = netns.make_hosts(5)
    mon_host, osd_hosts, r_host = hosts[0], hosts[1:4], hosts[4]
    x = 1
    x_args = ["--enable-debug", "true", "--debug-keepalive-uncapped", "true",
              "--net-ping-interval", "10s", "--net-ping-timeout", "10s"] \
        if mode == "lease_only" else []
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, hosts=hosts, lease_ttl="3s",
                osd_args=["--log-level", "debug"])
    for i, h in enumerate(osd_hosts):
        c.add_osd(host=h, args=x_args if i + 1 == x else [])  # osd.N on hosts[N]
    pools = {"p3": c.pool("p3", 3, 2, 4, failure_domain="host"),
             "p2": c.pool("p2", 2, 1, 4, failure_domain="host")}
    images = {"p3": "a", "p2": "b"}
    for pool, img in images.items():
        c.image(img, "4M", pool)
    for pool in pools:
        c.wait_active(pool, clean=True)
    cid = c.cluster_id()
    block = c.get("osd/state/1")["block_size"]
    addr = {o: c.get(f"osd/state/{o}")["addresses"][0] for o in (1, 2, 3)}

    def pg_map(pool):
        return c.get("config/pgs")["pools"][str(pools[pool])]["pgs"]

    # A PG of each pool whose primary is X, and the block of the image that
    # lands in it (PG = block % pg_count, docs/data-path.md §1).
    maps = {p: pg_map(p) for p in pools}
    assert all(any(g["primary"] == x for g in maps[p]) for p in pools), maps
    pg_of = {p: next(i for i, g in enumerate(maps[p]) if g["primary"] == x) for p in pools}
    pg_name = {p: f"{pools[p]}.{pg_of[p]:x}" for p in pools}
    targets = {}
    for p, img in images.items():
        idx = c.get(f"index/image/{img}")
        targets[p] = ((idx["pool"] << 48) | idx["num"], pg_of[p] * block)
    others = [o for o in (1, 2, 3) if o != x]

    def blk_write(p, seed, timeout=60):  # W, on the mon host
        r = c.verify(images[p], host=mon_host, blk_write=f"{targets[p][1]}:{LEN}:{seed}",
                     timeout=timeout)
        assert "rc 0" in r.stdout, (r.stdout, r.stderr)

    def converged(p):
        """The current primary's raw answer for p's block is V2 (never V1)."""
        primary = pg_map(p)[pg_of[p]]["primary"]
        got = raw_read_once(r_host, addr[primary], cid, targets[p]) if primary else None
        assert got != (0, "V1"), f"osd.{primary} read V1 after the heal"
        return got == (0, "V2")

    for p in pools:
        blk_write(p, V1)
    reader = RawReader(r_host, addr[x], cid, list(targets.values())).start()
    try:
        wait_for(lambda: sum(r["held"] == "V1" for r in reader.reads) >= 4, 30,
                 what="the raw reader reading V1 from X")
        cut_at = time.time()
        for h in [mon_host] + [osd_hosts[o - 1] for o in others]:
            osd_hosts[x - 1].nft_cut(h.addr)
        try:
            wait_for(lambda: all(pg_map(p)[pg_of[p]]["primary"] != x for p in pools), 30,
                     interval=0.1, what="the mon moving both PGs off X")
            moved_at = time.time()
            new_primary = {p: pg_map(p)[pg_of[p]]["primary"] for p in pools}
            acked = {}
            for p in pools:
                blk_write(p, V2)
                acked[p] = time.time()
            # R goes on reading through X, which cannot hear of the change.
            time.sleep(3)
        finally:
            heal_at = time.time()  # X can hear of the new map from here on
            osd_hosts[x - 1].nft_heal()
        healed_at = time.time()
        # X registers again and the mon may give it its PGs back: a PG seen
        # clean may still move once, so read from whichever OSD the map names
        # until one answers.
        wait_for(lambda: all(converged(p) for p in pools), 60, interval=0.2,
                 what="the primary of each block in the current map reading V2")
        for p in pools:
            c.wait_active(p, clean=True, timeout=60)
        clean_at = time.time()
    finally:
        reads = reader.stop()

    # The timeline (in the test's directory, and printed).
    t0, after_cut = cut_at, utc(cut_at)
    xlog = c.osd_log(x)
    refused = [s for s in stamps(xlog, "no read lease from osd.") if s > after_cut]
    left_active = {p: min([s for s in stamps(xlog, f"pg {pg_name[p]}: active -> ")
                           if s > after_cut] or ["~"]) for p in pools}
    # X learns that its PG moved from the map, from a SEC_LOCK of the new
    # primary (as its secondary elsewhere), or from its lease's expiry.
    news = ["pg {}: the map no longer makes us its primary",
            f"pg {{}}: lock moves from osd.{x} to", "expired: registering again"]
    learnt = {p: min([s for n in news for s in stamps(xlog, n.format(pg_name[p]))
                      if s > after_cut] or ["~"]) for p in pools}
    activated = {p: min([s for s in stamps(c.osd_log(new_primary[p]), f"pg {pg_name[p]}: active")
                         if s > after_cut] or ["~"]) for p in pools}
    lines = [f"mode {mode}; X = osd.{x}; blocks {targets}; PGs {pg_name}; new primaries "
             f"{new_primary}",
             f"cut +0.000 ({after_cut}), PGs moved by the mon +{moved_at - t0:.3f}, "
             f"V2 acknowledged {', '.join(f'{p} +{t - t0:.3f}' for p, t in acked.items())}, "
             f"healed +{healed_at - t0:.3f}, clean +{clean_at - t0:.3f}",
             f"X: first read refused for want of a read lease {refused[0] if refused else None}",
             f"X: PGs left ACTIVE {left_active}, learnt of the new map {learnt}",
             f"new primaries active {activated}"] + \
        timeline_of([r for r in reads if r["sent"] > cut_at - 0.3], t0,
                    {t: f"{p} block at {t[1]}" for p, t in targets.items()})
    timeline = "\n".join(lines)
    (tmp_path / "timeline.txt").write_text(timeline + "\n")
    print(timeline)

    # Never V1 from X once V2 was acknowledged (per block).
    stale = [r for r in reads for p in pools
             if r["target"] == targets[p] and r["sent"] > acked[p] and r["held"] == "V1"]
    assert not stale, f"stale read from the replaced primary:\n{timeline}"
    assert all(r["held"] in (None, "V1", "V2") for r in reads), timeline
    # The window. R read V1 from X after the cut: X served it locally ...
    assert any(r["sent"] > cut_at and r["held"] == "V1" for r in reads), timeline
    # ... and its last V1 answer came before the new primary activated.
    for p in pools:
        last_v1 = max(r["got"] for r in reads if r["target"] == targets[p] and r["held"] == "V1")
        assert utc(last_v1) < activated[p] != "~", (p, timeline)
    # X learnt of the new map only after the heal, and answered R -- with an
    # error -- after the acknowledgement and before it learnt.
    for p in pools:
        assert utc(heal_at) < learnt[p] != "~", (p, timeline)
        answered = [r for r in reads if r["target"] == targets[p] and r["sent"] > acked[p]
                    and r["got"] and utc(r["got"]) < learnt[p]]
        assert answered, f"R got no answer from X after the acknowledgement:\n{timeline}"
        assert all(r["rc"] == VS_EPGINACTIVE for r in answered), (p, timeline)
        if mode == "capped":
            # The keepalive made X leave ACTIVE before its PG moved.
            assert after_cut < left_active[p] < utc(moved_at), (p, timeline)
        else:
            # X was still ACTIVE when it refused R's reads after the
            # acknowledgement: the read lease alone refused them.
            assert any(utc(r["got"]) < left_active[p] for r in answered), (p, timeline)
            assert refused and refused[0] < utc(acked[p]), (p, timeline)

    # Converged: libvstor from R and W reads V2 too.
    for p in pools:
        for h in (r_host, mon_host):
            r = c.verify(images[p], host=h, timeout=60,
                         poll_read=f"{targets[p][1]}:{LEN}:{V1}:{V2}:1")
            polled = [line.split() for line in r.stdout.splitlines()
                      if line.startswith("read ")]
            assert polled and all(f[3] == "0" and f[5] == str(LEN // 512) for f in polled), \
                (p, r.stdout, r.stderr)
    assert time.monotonic() - t_begin < 110


def test_keepalive_hook_needs_enable_debug(procs, vstor_bin, tmp_path):
    """debug_keepalive_uncapped cannot be switched on by accident: without
    enable_debug the OSD refuses to start and says why."""
    assert_debug_option_refused(procs, vstor_bin, tmp_path, ["--debug-keepalive-uncapped", "true"])
