/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Fuzz target: every decoder of the client protocol (raft_codec.c) -- the
 * server's request decoder and the client's decoders of replies, results,
 * watch events and status. The first byte picks the decoder. */
#include "raft_int.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    struct raft_limits lim = {.value_max = 4096};
    switch (data[0] % 6) {
    case 0: {
        struct raft_req r;
        if (raft__req_decode(p, len, &lim, &r) == 0)
            raft__req_free(&r);
        break;
    }
    case 1: {
        struct raft_resp r;
        raft__resp_decode(p, len, &r);
        break;
    }
    case 2: {
        struct vs_meta_txn_result res;
        void *arena;
        if (raft__txn_result_decode(p, len, &res, &arena) == 0) {
            for (unsigned i = 0; i < res.n_ops; i++)
                for (unsigned k = 0; k < res.ops[i].n_kvs; k++)
                    if (res.ops[i].kvs[k].key_len && res.ops[i].kvs[k].key == NULL)
                        abort();
            free(arena);
        }
        break;
    }
    case 3: {
        struct vs_meta_event *ev;
        unsigned n;
        uint64_t rev;
        if (raft__events_decode(p, len, &ev, &n, &rev) == 0)
            free(ev);
        break;
    }
    case 4: {
        struct vs_raft_status st;
        raft__status_decode(p, len, &st);
        break;
    }
    default: {
        struct raft_txn t;
        if (raft__txn_decode(p, len, &lim, &t) == 0)
            raft__txn_free(&t);
        break;
    }
    }
    return 0;
}
