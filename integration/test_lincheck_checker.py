# SPDX-License-Identifier: GPL-3.0-or-later
"""The linearizability checker itself: it accepts linearizable histories and
catches the classic violations (stale read, lost write, a read from the
future, a CAS that succeeded against the wrong value), and treats unknown
outcomes as "maybe, at any later time"."""
import random

from lincheck import check, check_register


def op(f, s, t, v=None, o=None, e=None, r="ok", x=False, k=0, c=0):
    return {"c": c, "k": k, "f": f, "v": v, "e": e, "s": s, "t": t, "r": r, "o": o, "x": x}


def test_sequential_history_is_linearizable():
    h = [op("put", 0, 1, v="a"), op("get", 2, 3, o="a"), op("cas", 4, 5, v="b", e="a", x=True),
         op("get", 6, 7, o="b"), op("cas", 8, 9, v="c", e="a", x=False), op("get", 10, 11, o="b")]
    assert check_register(h)


def test_stale_read_is_caught():
    h = [op("put", 0, 1, v="a"), op("put", 2, 3, v="b"), op("get", 4, 5, o="a")]
    assert not check_register(h)


def test_concurrent_read_may_see_either():
    h = [op("put", 0, 1, v="a"), op("put", 2, 10, v="b"), op("get", 3, 4, o="a"),
         op("get", 5, 6, o="b")]
    assert check_register(h)
    # but once b was seen, a later read may not see a again
    h.append(op("get", 7, 8, o="a"))
    assert not check_register(h)


def test_read_from_the_future_is_caught():
    h = [op("get", 0, 1, o="a"), op("put", 2, 3, v="a")]
    assert not check_register(h)


def test_cas_against_wrong_value_is_caught():
    h = [op("put", 0, 1, v="a"), op("cas", 2, 3, v="c", e="b", x=True)]
    assert not check_register(h)
    h = [op("put", 0, 1, v="a"), op("cas", 2, 3, v="c", e="a", x=False)]
    assert not check_register(h)


def test_unknown_write_may_or_may_not_happen():
    h = [op("put", 0, 1, v="a"), op("put", 2, 3, v="b", r="unknown"), op("get", 10, 11, o="b")]
    assert check_register(h)
    h = [op("put", 0, 1, v="a"), op("put", 2, 3, v="b", r="unknown"), op("get", 10, 11, o="a")]
    assert check_register(h)
    # ...but never before it was sent
    h = [op("put", 0, 1, v="a"), op("get", 2, 3, o="b"), op("put", 4, 5, v="b", r="unknown")]
    assert not check_register(h)


def test_failed_ops_are_ignored_and_keys_independent():
    h = [op("put", 0, 1, v="a", k=1), op("put", 2, 3, v="b", r="fail", k=1),
         op("get", 4, 5, o="a", k=1), op("put", 0, 1, v="x", k=2), op("get", 2, 3, o="y", k=2)]
    assert check(h) == [2]


def test_random_linearizable_histories_pass():
    rng = random.Random(5)
    for _ in range(30):
        # Build histories from a real sequential execution with jittered times,
        # every op's interval containing its linearization point.
        state, h, t = None, [], 0
        for i in range(40):
            t += rng.randint(1, 5)
            f = rng.choice(["get", "put", "cas"])
            s, e = t - rng.randint(0, 8), t + rng.randint(0, 8)
            if f == "put":
                h.append(op("put", s, e, v=f"v{i}"))
                state = f"v{i}"
            elif f == "get":
                h.append(op("get", s, e, o=state))
            else:
                exp = state if rng.random() < 0.5 else "nope"
                swapped = exp == state
                h.append(op("cas", s, e, v=f"v{i}", e=exp, x=swapped))
                if swapped:
                    state = f"v{i}"
        assert check_register(h)


def _brute(h):
    """Every order that respects real time, replayed on a register."""
    import itertools
    n = len(h)
    for perm in itertools.permutations(range(n)):
        if any(h[perm[b]]["t"] < h[perm[a]]["s"] for a in range(n) for b in range(a + 1, n)):
            continue
        state, good = None, True
        for i in perm:
            o = h[i]
            if o["f"] == "put":
                state = o["v"]
            elif o["f"] == "get":
                good = o["o"] == state
            else:
                good = o["x"] == (state == o["e"])
                if good and o["x"]:
                    state = o["v"]
            if not good:
                break
        if good:
            return True
    return False


def test_agrees_with_brute_force():
    rng = random.Random(2)
    for _ in range(1500):
        h = []
        for i in range(5):
            f = rng.choice(["get", "put", "cas"])
            s = rng.randint(0, 20)
            e = s + rng.randint(1, 8)
            if f == "put":
                h.append(op("put", s, e, v=f"v{i}"))
            elif f == "get":
                h.append(op("get", s, e, o=rng.choice([None, "v0", "v1", "v2"])))
            else:
                h.append(op("cas", s, e, v=f"v{i}", e=rng.choice([None, "v0", "v1"]),
                            x=rng.random() < 0.5))
        assert check_register(h) == _brute(h), h
