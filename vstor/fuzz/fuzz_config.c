/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Fuzz target: the config file parser must reject or accept any bytes without
 * crashing, and an accepted config must format every key. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    struct vs_config cfg;
    char err[512];
    vs_config_init(&cfg);
    if (vs_config_load_string(&cfg, text, "fuzz", err, sizeof(err)) == 0) {
        char buf[4096];
        for (unsigned i = 0; i < vs_config_key_count; i++)
            vs_config_format(&cfg, i, buf, sizeof(buf));
    }
    vs_config_free(&cfg);
    free(text);
    return 0;
}
