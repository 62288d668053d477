# SPDX-License-Identifier: GPL-3.0-or-later
"""The runtime skeleton seen from outside: dispatch, help, config errors, and
the fixtures themselves (process cleanup, network namespaces)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from vstor_fixtures import list_netns, netns_available, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def test_help_lists_commands(vstor):
    r = vstor("--help")
    assert r.returncode == 0
    assert "usage: vstor COMMAND" in r.stdout
    assert "version" in r.stdout and "config" in r.stdout


def command_names(vstor):
    """Command names from `vstor --help` (the first 22 columns of each row)."""
    lines = vstor("--help").stdout.splitlines()
    return [l[2:24].strip() for l in lines if l.startswith("  ") and l[2] != "-"]


def test_every_command_has_help(vstor):
    names = command_names(vstor)
    assert "version" in names and "config" in names
    for name in names:
        r = vstor(*name.split(), "--help")
        assert r.returncode == 0, (name, r.stderr)
        assert r.stdout.startswith(f"usage: vstor {name} "), name
        assert "--log_level" in r.stdout  # generated from the key table


def test_version(vstor):
    r = vstor("version")
    assert r.returncode == 0
    assert r.stdout.startswith("vstor ")
    assert vstor("--version").stdout == r.stdout


def test_no_arguments_is_usage_error(vstor):
    r = vstor()
    assert r.returncode == 2
    assert "usage:" in r.stderr


def test_unknown_command(vstor):
    r = vstor("frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr
    assert "usage:" in r.stderr
    assert r.stdout == ""


def test_unknown_flag(vstor):
    r = vstor("version", "--no-such-flag", "1")
    assert r.returncode == 2
    assert "unknown option '--no-such-flag'" in r.stderr


def test_flag_missing_value(vstor):
    r = vstor("config", "--log-level")
    assert r.returncode == 2
    assert "needs a value" in r.stderr


def test_bad_flag_value(vstor):
    r = vstor("config", "--log-level", "loud")
    assert r.returncode == 2
    assert "log_level" in r.stderr and "loud" in r.stderr


def test_config_file_and_flag_precedence(vstor, tmp_path):
    conf = tmp_path / "vstor.conf"
    conf.write_text(json.dumps({"log_level": "warn", "mon_address": ["127.0.0.1:4000"]}))
    r = vstor("config", "--json", "--config", conf)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["log_level"] == "warn"
    assert cfg["mon_address"] == "127.0.0.1:4000"
    r = vstor("config", "--json", "--config", conf, "--log-level=debug")
    assert json.loads(r.stdout)["log_level"] == "debug"
    r = vstor("config", "--config", conf)
    assert "# file" in r.stdout and str(conf) in r.stdout


def test_malformed_config_names_line_and_column(vstor, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('{\n  "log_level": "info",\n  "mon_address": [\n}\n')
    r = vstor("config", "--config", conf)
    assert r.returncode == 2
    assert f"{conf}:4:" in r.stderr


def test_config_unknown_key_and_bad_type(vstor, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('{"log_levle": "info"}')
    r = vstor("config", "--config", conf)
    assert r.returncode == 2
    assert "unknown key 'log_levle'" in r.stderr and str(conf) in r.stderr
    conf.write_text('{"enable_debug": 7}')
    r = vstor("config", "--config", conf)
    assert r.returncode == 2
    assert "key 'enable_debug'" in r.stderr


def test_unreadable_config(vstor, tmp_path):
    r = vstor("config", "--config", tmp_path / "missing.conf")
    assert r.returncode == 2
    assert "missing.conf" in r.stderr and "No such file" in r.stderr
    d = tmp_path / "dir.conf"
    d.mkdir()
    r = vstor("config", "--config", d)
    assert r.returncode == 2
    assert "dir.conf" in r.stderr


def test_config_doc_covers_every_key(vstor):
    r = vstor("config", "--doc")
    assert r.returncode == 0
    keys = json.loads(vstor("config", "--json").stdout).keys()
    for k in keys:
        assert f"`{k}`" in r.stdout


def test_procs_fixture_stops_processes(procs):
    p = procs.start(sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)",
                    vstor=False, name="sleeper")
    wait_for(lambda: "up" in p.log(), 10, what="sleeper to start")
    assert p.alive()
    procs.cleanup()
    assert not p.alive()


@pytest.mark.netns
def test_netns_hosts_reach_each_other(netns):
    hosts = netns.make_hosts(3)
    assert len({h.addr for h in hosts}) == 3
    for a in hosts:
        for b in hosts:
            if a is not b:
                a.run("ping", "-c", "1", "-W", "2", b.addr)
    # A cut link isolates exactly one host.
    hosts[2].link_down()
    assert hosts[0].run("ping", "-c", "1", "-W", "1", hosts[2].addr, check=False).returncode != 0
    hosts[0].run("ping", "-c", "1", "-W", "2", hosts[1].addr)
    hosts[2].link_up()
    wait_for(lambda: hosts[0].run("ping", "-c", "1", "-W", "1", hosts[2].addr,
                                  check=False).returncode == 0, 10, what="link to come back")


INNER_TEST = textwrap.dedent('''
    import os
    def test_fails_midway(netns):
        hosts = netns.make_hosts(2)
        with open(os.environ["NS_RECORD"], "w") as f:
            f.write("\\n".join([h.ns for h in hosts] + [hosts[0].switch_ns]))
        hosts[0].run("ping", "-c", "1", "-W", "2", hosts[1].addr)
        assert False, "deliberate failure"
''')


@pytest.mark.netns
@pytest.mark.skipif(not netns_available(), reason="needs root and iproute2")
def test_netns_removed_even_when_test_fails(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    record = tmp_path / "ns.txt"
    env = dict(os.environ, NS_RECORD=str(record), PYTHONPATH=HERE)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "vstor_fixtures",
                        "-p", "no:cacheprovider", str(tmp_path / "test_inner.py")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr  # the inner test failed, as planned
    assert "deliberate failure" in r.stdout
    names = record.read_text().split()
    assert len(names) == 3
    assert not (set(names) & list_netns()), "namespaces left behind"


def test_docs_config_table_is_current(vstor):
    doc = open(os.path.join(HERE, "..", "docs", "config.md")).read()
    table = doc.split("keep in sync (checked by integration/test_foundation.py) -->\n", 1)[1]
    assert table.strip() == vstor("config", "--doc").stdout.strip(), \
        "docs/config.md is stale: paste the output of `vstor config --doc` into it"
