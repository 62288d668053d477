# SPDX-License-Identifier: GPL-3.0-or-later
"""The messenger seen from outside: `vstor net bench` over loopback, and a
bench server and client on two network-namespace hosts. These are smoke runs
(--quick): they check that every case completes, not how fast."""
import re

import pytest

from vstor_fixtures import wait_for

CASES = ["raw socket 4k", "write 4k", "read 4k", "write 4k", "read 4k", "raw socket 4M",
         "write 4M", "read 4M", "write 4M", "read 4M"]
ROW = re.compile(r"^(\S+(?: \S+)*?)\s+Q(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+"
                 r"([\d.]+)\s+([\d.]+)\s+(\S+)$")


def rows(out):
    found = []
    for line in out.splitlines():
        m = ROW.match(line.strip())
        if m:
            found.append(m)
    return found


def test_net_bench_loopback(vstor):
    r = vstor("net", "bench", "--quick", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    found = rows(r.stdout)
    assert [m.group(1) for m in found] == CASES, r.stdout
    for m in found:
        assert float(m.group(3)) > 0, m.group(0)      # ops/s
        assert m.group(9) != "-", m.group(0)          # server CPU measured
    assert "failed" not in r.stdout


def test_net_bench_one_shape(vstor):
    r = vstor("net", "bench", "--quick", "--size", "64k", "--depth", "4", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    found = rows(r.stdout)
    assert [(m.group(1), m.group(2)) for m in found] == [("raw socket", "1"), ("write", "4"),
                                                         ("read", "4")], r.stdout
    r = vstor("net", "bench", "--size", "8M")
    assert r.returncode == 2 and "at most 4M" in r.stderr


def test_net_bench_bad_address(vstor):
    r = vstor("net", "bench", "--connect", "not-an-address")
    assert r.returncode == 2
    assert "is not IP:PORT" in r.stderr
    r = vstor("net", "bench", "--listen", "1.2.3.4:99999")
    assert r.returncode == 1
    assert "is not IP:PORT" in r.stderr
    # Nothing listens there: every case fails with a clear reason, exit 1.
    r = vstor("net", "bench", "--quick", "--connect", "127.0.0.1:1", timeout=60)
    assert r.returncode == 1
    assert "failed: Connection refused" in r.stdout, r.stdout


@pytest.mark.netns
def test_net_bench_across_hosts(netns, procs, vstor):
    a, b = netns.make_hosts(2)
    server = procs.start("net", "bench", "--listen", f"{a.addr}:7400", name="server",
                         prefix=a.prefix())
    wait_for(lambda: "listening on" in server.log(), 10, what="the bench server")
    r = vstor("net", "bench", "--quick", "--connect", f"{a.addr}:7400", prefix=b.prefix(),
              timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    found = rows(r.stdout)
    assert [m.group(1) for m in found] == [c for c in CASES if not c.startswith("raw")]
    for m in found:
        assert m.group(9) == "-"  # the server is elsewhere: no server CPU column
    assert server.stop() == 0, server.log()  # SIGTERM: a clean shutdown
    assert "shutting down" in server.log()
