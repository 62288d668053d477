/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Fuzz target: the raft message decoder (raft_msg.c), the gate between the
 * network and raft's own asserting code. Any bytes must be refused or
 * decoded; a decoded message must re-encode to a message that decodes again
 * to the same fields, and must be safe to hand to raft's configuration
 * decoder. */
#include "raft_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reencode(const struct raft_message *m)
{
    struct raft_buf b;
    raft__buf_init(&b);
    raft__msg_encode_head(&b, m);
    if (m->type == RAFT_APPEND_ENTRIES) {
        for (unsigned i = 0; i < m->append_entries.n_entries; i++) {
            const struct raft_entry *e = &m->append_entries.entries[i];
            raft__msg_encode_entry(&b, e->term, (uint8_t)e->type, e->buf.base,
                                   (uint32_t)e->buf.len);
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        struct raft_buffer conf;
        if (raft_configuration_encode(&m->install_snapshot.conf, &conf) != 0)
            abort();
        raft__buf_blob(&b, conf.base, (uint32_t)conf.len);
        raft__buf_blob(&b, m->install_snapshot.data.base,
                       (uint32_t)m->install_snapshot.data.len);
        raft_free(conf.base);
    }
    struct raft_message again;
    if (b.oom || raft__msg_decode(b.p, b.len, &again) != 0)
        abort();
    if (again.type != m->type)
        abort();
    raft__msg_release(&again);
    raft__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct raft_message m;
    if (raft__msg_decode(data, size, &m) == 0) {
        reencode(&m);
        raft__msg_release(&m);
    }
    return 0;
}
