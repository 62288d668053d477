# SPDX-License-Identifier: GPL-3.0-or-later
"""`vstor serve`: children started from the config, a killed child restarted
with back-off, SIGHUP applying config changes, SIGTERM stopping everything."""
import json
import os
import re
import signal

from vstor_fixtures import free_port, wait_for


def child_pids(proc, name):
    """PIDs serve reported for child `name`, in start order."""
    return [int(m.group(1)) for m in re.finditer(re.escape(name) + r": started pid (\d+)",
                                                 proc.log())]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def meta_ok(vstor, addr):
    r = vstor("meta", "put", "serve/probe", "1", "--mon_address", addr, "--meta_timeout", "2s",
              timeout=30)
    return r.returncode == 0


def write_conf(path, **kw):
    path.write_text(json.dumps(kw))


def test_serve_runs_restarts_reloads_and_stops(procs, vstor, tmp_path):
    addr = f"127.0.0.1:{free_port()}"
    conf = tmp_path / "vstor.conf"
    write_conf(conf, mon_address=[addr], serve_mon_id=1, data_dir=str(tmp_path / "data"),
               serve_restart_delay="200ms", serve_restart_delay_max="1s",
               serve_stop_timeout="10s")
    serve = procs.start("serve", "--config", conf, name="serve")
    wait_for(lambda: child_pids(serve, "mon.1"), 20, what="serve to start the mon")
    wait_for(lambda: meta_ok(vstor, addr), 60, interval=0.5, what="the metadata service")

    # kill -9 the mon: serve logs why it died and restarts it; the data survives.
    first = child_pids(serve, "mon.1")[0]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(child_pids(serve, "mon.1")) >= 2, 20, what="the mon restart")
    assert "mon.1 (pid %d) died: killed by signal 9" % first in serve.log()
    assert re.search(r"mon\.1: restarting in \d+ ms", serve.log())
    wait_for(lambda: meta_ok(vstor, addr), 60, interval=0.5, what="the restarted mon")
    r = vstor("meta", "get", "serve/probe", "--mon_address", addr)
    assert r.returncode == 0 and "1" in r.stdout

    # SIGHUP with the mon removed from the config: serve stops it.
    second = child_pids(serve, "mon.1")[-1]
    write_conf(conf, mon_address=[addr], serve_mon_id=0, osd_devices=[],
               data_dir=str(tmp_path / "data"))
    # A node with nothing to run is refused at start, but a reload to it is fine.
    serve.signal(signal.SIGHUP)
    wait_for(lambda: not alive(second), 20, what="the mon to stop after SIGHUP")
    assert "no longer configured" in serve.log()
    assert serve.alive()

    # SIGHUP back: the mon starts again. A bad config is refused and changes nothing.
    write_conf(conf, mon_address=[addr], serve_mon_id=1, data_dir=str(tmp_path / "data"))
    serve.signal(signal.SIGHUP)
    wait_for(lambda: len(child_pids(serve, "mon.1")) >= 3, 20, what="the mon to come back")
    third = child_pids(serve, "mon.1")[-1]
    wait_for(lambda: meta_ok(vstor, addr), 60, interval=0.5, what="the mon after SIGHUP")
    conf.write_text("{ not json")
    serve.signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in serve.log(), 10, what="the refusal")
    assert alive(third), serve.log()

    # SIGTERM: every child stops, serve exits 0.
    serve.signal(signal.SIGTERM)
    assert serve.wait(30) == 0
    assert not alive(third)
    assert "every child has stopped" in serve.log()


def test_serve_bad_config(vstor, tmp_path):
    conf = tmp_path / "vstor.conf"
    write_conf(conf, mon_address=["127.0.0.1:1"], serve_mon_id=3)
    r = vstor("serve", "--config", conf)
    assert r.returncode == 2
    assert "serve_mon_id 3, but mon_address lists 1 member(s)" in r.stderr
    write_conf(conf, osd_devices=[])
    r = vstor("serve", "--config", conf)
    assert r.returncode == 2
    assert "nothing to run" in r.stderr


def test_three_nodes_form_one_cluster(procs, vstor, tmp_path):
    """Three serve instances with the same mon_address list and their own
    serve_mon_id form one metadata cluster (not three)."""
    addrs = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    serves = []
    for i in range(3):
        conf = tmp_path / f"node{i + 1}.conf"
        write_conf(conf, mon_address=addrs, serve_mon_id=i + 1,
                   data_dir=str(tmp_path / f"node{i + 1}"))
        serves.append(procs.start("serve", "--config", conf, name=f"serve{i + 1}"))
    joined = ",".join(addrs)
    wait_for(lambda: meta_ok(vstor, joined), 60, interval=0.5, what="the metadata service")
    def cluster_ids():
        r = vstor("meta", "status", "--mon_address", joined, "--json", timeout=30)
        members = json.loads(r.stdout) if r.returncode == 0 else []
        return {m.get("cluster_id") for m in members} if len(members) == 3 else None
    ids = wait_for(cluster_ids, 30, interval=0.5, what="the status of all three members")
    assert len(ids) == 1 and None not in ids, f"members formed {len(ids)} clusters: {ids}"
    for s in serves:
        s.signal(signal.SIGTERM)
    for s in serves:
        assert s.wait(30) == 0
