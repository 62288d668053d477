/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The supervisor with real child processes (/bin/sh): restart with back-off,
 * reload (add, remove, change), stop-all with SIGTERM then SIGKILL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>

#include "supervisor.h"

static struct vs_child_spec sh_spec(const char *name, const char *script)
{
    struct vs_child_spec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.argv[0] = "/bin/sh";
    s.argv[1] = "-c";
    s.argv[2] = script;
    return s;
}

static bool find(struct vs_supervisor *s, const char *name, struct vs_child_info *out)
{
    for (unsigned i = 0; i < vs_supervisor_count(s); i++)
        if (vs_supervisor_info(s, i, out) && strcmp(out->name, name) == 0)
            return true;
    return false;
}

/* Runs the loop until pred holds or timeout_ms passes. */
static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *ctx, uint64_t timeout_ms)
{
    uint64_t end = uv_now(loop) + timeout_ms;
    while (!pred(ctx)) {
        if (uv_now(loop) > end)
            return false;
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
    return true;
}

struct expect {
    struct vs_supervisor *sup;
    const char *name;
    unsigned starts;
};

static bool started_n(void *arg)
{
    struct expect *e = arg;
    struct vs_child_info info;
    return find(e->sup, e->name, &info) && info.starts >= e->starts && info.pid > 0;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

static void done_cb(void *ctx)
{
    *(bool *)ctx = true;
}

/* A keep-alive timer so uv_run(ONCE) always has something to wait for. */
static uv_timer_t tick;
static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void test_restart_backoff_and_stop(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 5, 5);
    struct vs_supervisor_opts o = {.backoff_initial_ms = 20, .backoff_max_ms = 80,
                                   .stable_ms = 60000};
    struct vs_supervisor *s;
    assert_int_equal(vs_supervisor_create(&loop, &o, &s), 0);
    struct vs_child_spec specs[2] = {sh_spec("crashy", "exit 3"),
                                     sh_spec("steady", "exec sleep 60")};
    assert_int_equal(vs_supervisor_apply(s, specs, 2), 0);

    /* The crashing child is restarted again and again, with a growing delay. */
    struct expect e = {s, "crashy", 4};
    assert_true(run_until(&loop, started_n, &e, 5000));
    struct vs_child_info info;
    assert_true(find(s, "crashy", &info));
    assert_int_equal(info.last_exit_status, 3);
    assert_true(find(s, "steady", &info));
    assert_int_equal(info.starts, 1);
    int steady_pid = info.pid;
    assert_true(steady_pid > 0);

    /* Reload: drop "crashy", change "steady", add "new". */
    struct vs_child_spec next[2] = {sh_spec("steady", "exec sleep 61"),
                                    sh_spec("new", "exec sleep 60")};
    assert_int_equal(vs_supervisor_apply(s, next, 2), 0);
    struct expect e2 = {s, "steady", 2};
    assert_true(run_until(&loop, started_n, &e2, 5000));
    assert_true(find(s, "steady", &info));
    assert_int_not_equal(info.pid, steady_pid);
    assert_int_equal(info.last_term_signal, SIGTERM);
    struct expect e3 = {s, "new", 1};
    assert_true(run_until(&loop, started_n, &e3, 5000));

    /* Stop all: a child that ignores SIGTERM gets SIGKILL after the timeout. */
    struct vs_child_spec last[3] = {sh_spec("steady", "exec sleep 61"),
                                    sh_spec("new", "exec sleep 60"),
                                    sh_spec("stubborn", "trap '' TERM; while :; do sleep 1; done")};
    assert_int_equal(vs_supervisor_apply(s, last, 3), 0);
    struct expect e4 = {s, "stubborn", 1};
    assert_true(run_until(&loop, started_n, &e4, 5000));
    uv_sleep(100); /* let the shell install its trap */
    bool done = false;
    vs_supervisor_stop_all(s, 300, done_cb, &done);
    assert_true(run_until(&loop, flag_set, &done, 5000));
    assert_true(find(s, "stubborn", &info));
    assert_int_equal(info.pid, 0);
    assert_int_equal(info.last_term_signal, SIGKILL);
    assert_true(find(s, "new", &info));
    assert_int_equal(info.last_term_signal, SIGTERM);
    assert_int_equal(vs_supervisor_apply(s, last, 3), -ESHUTDOWN);

    vs_supervisor_close(s);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_missing_program_backs_off(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 5, 5);
    struct vs_supervisor_opts o = {.backoff_initial_ms = 10, .backoff_max_ms = 40,
                                   .stable_ms = 60000};
    struct vs_supervisor *s;
    assert_int_equal(vs_supervisor_create(&loop, &o, &s), 0);
    struct vs_child_spec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.name, sizeof(spec.name), "ghost");
    spec.argv[0] = "/nonexistent/vstor";
    assert_int_equal(vs_supervisor_apply(s, &spec, 1), 0);
    struct vs_child_info info;
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(find(s, "ghost", &info));
    assert_true(info.starts >= 2);
    assert_int_equal(info.pid, 0);
    assert_int_equal(info.last_exit_status, 127);
    assert_true(info.next_delay_ms <= 40);
    bool done = false;
    vs_supervisor_stop_all(s, 100, done_cb, &done);
    assert_true(done);
    vs_supervisor_close(s);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_backoff_and_stop),
        cmocka_unit_test(test_missing_program_backs_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
