/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_kernel: what runs without the nbd module -- device name parsing, and
 * the probe that turns a missing module into a clear error. (The netlink and
 * ioctl sequences need the module; see docs/nbd.md.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nbd_kernel.h"

static void test_parse_device(void **state)
{
    (void)state;
    int i = -1;
    assert_int_equal(vs_nbd_kernel_parse_device("/dev/nbd3", &i), 0);
    assert_int_equal(i, 3);
    assert_int_equal(vs_nbd_kernel_parse_device("nbd15", &i), 0);
    assert_int_equal(i, 15);
    assert_int_equal(vs_nbd_kernel_parse_device("0", &i), 0);
    assert_int_equal(i, 0);
    const char *bad[] = {"",       "/dev/", "/dev/nbd",    "nbd-1",      "/dev/sda",
                         "nbd3p1", "nbd03", "99999999999", "/dev/nbd 1", "x"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        assert_int_equal(vs_nbd_kernel_parse_device(bad[k], &i), -EINVAL);
}

static void test_probe(void **state)
{
    (void)state;
    char root[256], err[1024];
    const char *dir = getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/nbd_sysfs.XXXXXX", dir && *dir ? dir : "/tmp");
    assert_non_null(mkdtemp(root));
    /* A sysfs with the module: found without asking the kernel. */
    char mod[300];
    snprintf(mod, sizeof(mod), "%s/module", root);
    assert_int_equal(mkdir(mod, 0755), 0);
    snprintf(mod, sizeof(mod), "%s/module/nbd", root);
    assert_int_equal(mkdir(mod, 0755), 0);
    assert_int_equal(vs_nbd_kernel_probe(root, err, sizeof(err)), 0);
    rmdir(mod);
    /* Without it: unless this kernel really has nbd (netlink family present),
     * the probe fails and says why, and what to use instead. */
    int rc = vs_nbd_kernel_probe(root, err, sizeof(err));
    if (access("/sys/module/nbd", F_OK) != 0) {
        assert_int_equal(rc, -ENOENT);
        assert_non_null(strstr(err, "nbd kernel module is not loaded"));
        assert_non_null(strstr(err, "vstor nbd-export"));
    }
    snprintf(mod, sizeof(mod), "%s/module", root);
    rmdir(mod);
    rmdir(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_device),
        cmocka_unit_test(test_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
