# SPDX-License-Identifier: GPL-3.0-or-later
"""A linearizability checker for histories of get/put/cas on registers.

The algorithm is Wing & Gong's search with Lowe's memoisation (the one behind
Knossos and Porcupine), written here for the test harness:

  * Every operation has an invocation time and a response time; an operation
    whose outcome is unknown (a write lost in flight, a client killed) gets an
    infinite response time: it may take effect at any point after it started,
    or never (then it is linearized last, where it changes nothing seen).
  * Keys are independent registers, so each key is checked on its own
    (linearizability is compositional).
  * The search walks the history in time order; at a call it tries to
    linearize that operation now against the register model, at a return it
    must already have linearized the operation, else it backtracks. States
    already explored (set of linearized ops + register value) are cached.

Operations (dicts, as `vstor meta bench --workload lincheck` writes them):
  c client, k key, f "get"|"put"|"cas", v value written, e expected value (cas;
  None means "absent"), s start ns, t end ns, r "ok"|"fail"|"unknown",
  o observed value (get; None = absent), x cas swapped (bool).
A "fail" op certainly had no effect and is dropped; so is a get that did not
answer (it observed nothing).
"""
import json
import math


def load_history(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _prepare(ops):
    out = []
    for op in ops:
        if op["r"] == "fail":
            continue
        if op["f"] == "get" and op["r"] != "ok":
            continue
        end = op["t"] if op["r"] == "ok" else math.inf
        out.append(dict(op, end=end))
    return out


def _step(state, op):
    """Applies op to the register value `state`; returns (ok, new_state)."""
    f, known = op["f"], op["r"] == "ok"
    if f == "put":
        return True, op["v"]
    if f == "get":
        return op.get("o") == state, state
    # cas
    matches = state == op.get("e")
    if not known:
        return True, op["v"] if matches else state
    if op.get("x"):
        return matches, op["v"] if matches else state
    return not matches, state


def check_register(ops, initial=None, max_states=2_000_000):
    """True when the ops of one register are linearizable."""
    ops = _prepare(ops)
    if not ops:
        return True
    # Events: (time, kind, op index), kind 0 a call and 1 a return. At equal
    # times calls sort first (an op of zero length must be called before it
    # returns); two ops that merely touch are then taken as concurrent, which
    # only ever accepts more, and times are in nanoseconds.
    events = []
    for i, op in enumerate(ops):
        events.append((op["s"], 0, i))
        events.append((op["end"], 1, i))
    events.sort()
    # Doubly linked list of events.
    n = len(events)
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    head = 0
    ret_pos = {}
    for pos, (_, kind, i) in enumerate(events):
        if kind == 1:
            ret_pos[i] = pos

    def unlink(pos):
        nonlocal head
        if prv[pos] >= 0:
            nxt[prv[pos]] = nxt[pos]
        else:
            head = nxt[pos]
        if nxt[pos] < n:
            prv[nxt[pos]] = prv[pos]

    def relink(pos):
        nonlocal head
        if prv[pos] >= 0:
            nxt[prv[pos]] = pos
        else:
            head = pos
        if nxt[pos] < n:
            prv[nxt[pos]] = pos

    state = initial
    linearized = 0
    stack = []
    cache = set()
    entry = head
    explored = 0
    while head < n:
        if entry >= n:
            return False
        _, kind, i = events[entry]
        if kind == 0:
            ok, new_state = _step(state, ops[i])
            key = (linearized | (1 << i), new_state)
            if ok and key not in cache:
                explored += 1
                if explored > max_states:
                    raise RuntimeError("search too large")
                cache.add(key)
                stack.append((entry, state))
                state = new_state
                linearized |= 1 << i
                unlink(entry)
                unlink(ret_pos[i])
                entry = head
            else:
                entry = nxt[entry]
        else:
            if not stack:
                return False
            entry, state = stack.pop()
            i = events[entry][2]
            linearized &= ~(1 << i)
            relink(ret_pos[i])
            relink(entry)
            entry = nxt[entry]
    return True


def check(history, initial=None):
    """Checks every key; returns a list of the keys that are NOT linearizable."""
    by_key = {}
    for op in history:
        by_key.setdefault(op["k"], []).append(op)
    return [k for k, ops in sorted(by_key.items()) if not check_register(ops, initial)]


def summarize(path):
    """Totals of a campaign's summary lines (test_meta_lincheck.py writes one
    per run to META_LINCHECK_SUMMARY); returns (text, all runs clean)."""
    runs = load_history(path)
    ops = sum(r["ops"] for r in runs)
    ok = sum(r["ok"] for r in runs)
    unknown = sum(r["unknown"] for r in runs)
    faults = sum(r["faults"] for r in runs)
    bad = [r["run"] for r in runs if r["violations"]]
    text = (f"{len(runs)} runs ({sum(1 for r in runs if r['members'] == 3)} of 3 members, "
            f"{sum(1 for r in runs if r['members'] == 5)} of 5), {faults} faults, {ops} ops "
            f"checked ({ok} ok, {unknown} unknown), runs with violations: {len(bad)} {bad}")
    return text, not bad


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "--summary":
        sys.exit("usage: lincheck.py --summary SUMMARY.jsonl")
    summary, clean = summarize(sys.argv[2])
    print(summary)
    sys.exit(0 if clean else 1)
