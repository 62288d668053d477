# SPDX-License-Identifier: GPL-3.0-or-later
"""`vstor placement simulate`: the placement library driven through the binary,
as an operator previews a change: a first map, a change against it, and the
error paths (infeasible pool: exit 1; malformed input: exit 2)."""
import json


def tree(hosts, per_host, extra=()):
    nodes = {f"h{h}": {"level": "host"} for h in range(hosts)}
    osds, n = {}, 1
    for h in range(hosts):
        for _ in range(per_host):
            osds[str(n)] = {"parent": f"h{h}", "weight": 1.0}
            n += 1
    for osd_id, parent in extra:
        osds[str(osd_id)] = {"parent": parent, "weight": 1.0}
    return {"nodes": nodes, "osds": osds}


POOLS = {"1": {"name": "rbd", "scheme": "replicated", "pg_size": 3, "pg_minsize": 2,
               "pg_count": 256},
         "2": {"name": "ec", "scheme": "ec", "pg_size": 4, "parity_chunks": 1,
               "pg_minsize": 3, "pg_count": 64}}


def write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def host_of(osd):
    return (osd - 1) // 3 if osd <= 12 else 0


def test_simulate_first_map_and_change(vstor, tmp_path):
    t12 = write(tmp_path, "t12.json", tree(4, 3))
    pools = write(tmp_path, "pools.json", POOLS)
    first = tmp_path / "m12.json"
    r = vstor("placement", "simulate", "--tree", t12, "--pools", pools, "--json", "--out", first)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    pgs = out["pgs"]["pools"]["1"]["pgs"]
    assert len(pgs) == 256
    for pg in pgs:
        assert len({host_of(o) for o in pg["osd_set"]}) == 3
        assert pg["primary"] == pg["osd_set"][0]
    rep = out["report"]["pools"]["1"]
    assert rep["ratio_min"] > 0.9999 and rep["ratio_max"] < 1.0001
    assert all(o["slots"] == 64 for o in rep["osds"])
    assert out["report"]["pools"]["2"]["slots_per_pg"] == 4
    assert json.loads(first.read_text())["pools"]["1"]["pgs"] == pgs

    t13 = write(tmp_path, "t13.json", tree(4, 3, extra=[(13, "h0")]))
    r = vstor("placement", "simulate", "--tree", t13, "--pools", pools, "--prev", first,
              "--summary")
    assert r.returncode == 0, r.stderr
    assert "moved members 59 (lower bound 59)" in r.stdout
    assert "solve time:" in r.stdout


def test_simulate_infeasible_pool(vstor, tmp_path):
    t = write(tmp_path, "t.json", tree(2, 2))
    pools = write(tmp_path, "pools.json", {"1": POOLS["1"]})
    r = vstor("placement", "simulate", "--tree", t, "--pools", pools, "--summary")
    assert r.returncode == 0  # 2 hosts >= pg_minsize 2: degraded, not infeasible
    assert "degraded" in r.stdout
    pools = write(tmp_path, "pools3.json", {"1": dict(POOLS["1"], pg_minsize=3)})
    r = vstor("placement", "simulate", "--tree", t, "--pools", pools, "--summary")
    assert r.returncode == 1
    assert "pool 1 (rbd): only 2 failure domains (host)" in r.stderr


def test_simulate_bad_input(vstor, tmp_path):
    t = write(tmp_path, "t.json", {"osds": {"1": {"weight": "heavy"}}})
    pools = write(tmp_path, "pools.json", POOLS)
    r = vstor("placement", "simulate", "--tree", t, "--pools", pools)
    assert r.returncode == 2
    assert "tree.osds.1.weight: must be a number" in r.stderr
    r = vstor("placement", "simulate", "--tree", tmp_path / "absent.json", "--pools", pools)
    assert r.returncode == 2
    assert "absent.json" in r.stderr
    r = vstor("placement", "simulate", "--pools", pools)
    assert r.returncode == 2
    assert "missing required option --tree" in r.stderr
