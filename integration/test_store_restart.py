# SPDX-License-Identifier: GPL-3.0-or-later
"""The block store on a real file through io_uring survives kill -9: a writer
process (store/tests/store_uring_writer.c) writes objects with durable
acknowledgement and prints each ack; it is killed with SIGKILL at a random
moment; the store is reopened (recovery) and every acknowledged write must be
there, whole, and `vstor disk check` must find no damage. The same writer's
journal feeds `vstor disk dump --journal` (every item of every record)."""
import json
import os
import random
import signal
import subprocess

from vstor_fixtures import sanitizer_env, wait_for


def writer_bin(vstor_bin):
    build = os.path.dirname(os.path.dirname(vstor_bin))
    return os.path.join(build, "store", "store_uring_writer")


def acks(proc):
    return sum(1 for line in proc.log().splitlines() if line.startswith("ack "))


def test_kill9_restart(procs, vstor, vstor_bin, tmp_path):
    img = tmp_path / "store.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    writer = writer_bin(vstor_bin)
    rng = random.Random(os.getpid())
    for round_ in range(3):
        p = procs.start(writer, "write", img, vstor=False, name=f"writer{round_}")
        target = rng.randint(50, 400)
        wait_for(lambda: acks(p) >= target or not p.alive(), timeout=60, what="acks")
        assert p.alive(), p.log()
        p.signal(signal.SIGKILL)
        p.wait(timeout=10)
        log = p.log()
        n = sum(1 for line in log.splitlines() if line.startswith("ack "))
        assert n >= target
        v = subprocess.run([writer, "verify", str(img)], input=log, capture_output=True,
                           text=True, timeout=60, env=sanitizer_env())
        assert v.returncode == 0, v.stdout + v.stderr
        assert "0 objects bad" in v.stdout
        r = vstor("disk", "check", img)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 damaged" in r.stdout


def dump_journal(vstor, img):
    r = vstor("disk", "dump", "--journal", "--json", img)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout), r.stderr


def test_disk_dump_journal_items(procs, vstor, vstor_bin, tmp_path):
    """`vstor disk dump --journal` lists every item of every record: the
    writer keeps 8 writes in flight, so its 16 KiB overwrites go in records
    of several writes (format 2); each lists whole, in order, with its data
    right after the header sector or the previous item's data. Then a record
    of several writes damaged on disk ends the journal: the listing stops
    before it and says why, in text and JSON."""
    img = tmp_path / "store.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    p = procs.start(writer_bin(vstor_bin), "write", img, vstor=False, name="writer")
    wait_for(lambda: acks(p) >= 2000 or not p.alive(), timeout=60, what="acks")
    assert p.alive(), p.log()
    p.signal(signal.SIGKILL)
    p.wait(timeout=10)
    items, _ = dump_journal(vstor, img)
    records = {}
    for it in items:
        records.setdefault(it["seq"], []).append(it)
    assert sorted(records) == list(range(min(records), max(records) + 1))
    for seq, its in records.items():
        assert [it["item"] for it in its] == list(range(its[0]["items"])), its
        data = its[0]["pos"] + 4096
        for it in its:
            assert it["type"] == "write" and it["pos"] == its[0]["pos"]
            if it["big"]:
                assert it["items"] == 1 and it["block"] is not None and it["data_pos"] is None
                continue
            assert it["block"] is None and it["data_pos"] == data and it["len"] == 16384
            data += it["len"]
    several = [s for s, its in records.items() if len(its) > 1]
    assert several, "no record of several writes in the journal"
    text = vstor("disk", "dump", "--journal", img)
    assert text.returncode == 0 and len(text.stdout.splitlines()) == len(items) + 1
    # damage the first record of several writes: the journal ends before it
    seq = several[0]
    info = json.loads(vstor("disk", "info", "--json", img, check=True).stdout)
    with open(img, "r+b") as f:
        f.seek(info["layout"]["journal_offset"] + records[seq][0]["pos"] + 64 + 8)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x20]))  # item 0's stripe: the header crc fails
    items2, err = dump_journal(vstor, img)
    assert items2 == [it for it in items if it["seq"] < seq]
    assert f"the journal ends before seq {seq}" in err, err
    assert "checksum mismatch" in err
    text = vstor("disk", "dump", "--journal", img)
    assert text.returncode == 0 and f"ends before seq {seq}" in text.stderr
