/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fake_meta.c -- see fake_meta.h. Linear structures throughout: tests hold
 * a few dozen keys.
 */
#include "fake_meta.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FM_MAX 4096

struct fm_kv {
    char *key;
    char *val;
    uint64_t create_rev, mod_rev, version;
};

struct fm_ev {
    uint8_t type;
    char *key;
    char *val;
    uint64_t mod_rev;
};

enum fm_call_kind { CALL_ID = 1, CALL_RANGE, CALL_TXN };

struct fm_call {
    uint8_t kind;
    char key[512], end[512];
    uint32_t key_len, end_len;
    void (*id_cb)(void *ctx, int rc, uint64_t id);
    vs_meta_range_cb range_cb;
    vs_meta_txn_cb txn_cb;
    struct vs_meta_txn txn; /* keys copied below */
    struct vs_meta_compare cmp[8];
    struct vs_meta_op ops[8];
    char bufs[16][512];
    void *ctx;
};

struct fm_watch {
    char key[512], end[512];
    uint32_t key_len, end_len;
    uint64_t next_rev;
    vs_meta_watch_cb cb;
    void *ctx;
    bool dead;
};

struct fake_meta {
    uv_loop_t *loop;
    uv_timer_t timer;
    uint64_t cluster_id;
    uint64_t rev, compact_rev;
    struct fm_kv kvs[FM_MAX];
    unsigned n_kvs;
    struct fm_ev *hist;
    unsigned n_hist, cap_hist;
    struct fm_call *calls[FM_MAX];
    unsigned n_calls;
    struct fm_watch *watches[64];
    unsigned n_watches;
    bool down;
    bool closing;
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

static bool in_range(const char *k, uint32_t klen, const char *key, uint32_t key_len,
                     const char *end, uint32_t end_len)
{
    if (end_len == 0)
        return klen == key_len && memcmp(k, key, klen) == 0;
    size_t n = klen < key_len ? klen : key_len;
    int c = memcmp(k, key, n);
    if (c < 0 || (c == 0 && klen < key_len))
        return false;
    if (end_len == 1 && end[0] == 0)
        return true;
    n = klen < end_len ? klen : end_len;
    c = memcmp(k, end, n);
    return c < 0 || (c == 0 && klen < end_len);
}

static struct fm_kv *find(struct fake_meta *m, const char *key)
{
    for (unsigned i = 0; i < m->n_kvs; i++)
        if (strcmp(m->kvs[i].key, key) == 0)
            return &m->kvs[i];
    return NULL;
}

static void hist_add(struct fake_meta *m, uint8_t type, const char *key, const char *val)
{
    if (m->n_hist == m->cap_hist) {
        m->cap_hist = m->cap_hist ? m->cap_hist * 2 : 64;
        m->hist = realloc(m->hist, m->cap_hist * sizeof(*m->hist));
        VS_ASSERT(m->hist);
    }
    m->hist[m->n_hist++] = (struct fm_ev){type, strdup(key), val ? strdup(val) : NULL, m->rev};
}

static void do_put(struct fake_meta *m, const char *key, const char *value)
{
    struct fm_kv *kv = find(m, key);
    if (!kv) {
        VS_ASSERT(m->n_kvs < FM_MAX);
        kv = &m->kvs[m->n_kvs++];
        memset(kv, 0, sizeof(*kv));
        kv->key = strdup(key);
        kv->create_rev = m->rev;
    }
    free(kv->val);
    kv->val = strdup(value);
    kv->mod_rev = m->rev;
    kv->version++;
    hist_add(m, VS_META_EVENT_PUT, key, value);
}

static bool do_delete(struct fake_meta *m, const char *key)
{
    struct fm_kv *kv = find(m, key);
    if (!kv)
        return false;
    free(kv->key);
    free(kv->val);
    *kv = m->kvs[--m->n_kvs];
    hist_add(m, VS_META_EVENT_DELETE, key, NULL);
    return true;
}

void fake_meta_put(struct fake_meta *m, const char *key, const char *value)
{
    m->rev++;
    do_put(m, key, value);
}

void fake_meta_delete(struct fake_meta *m, const char *key)
{
    m->rev++;
    if (!do_delete(m, key))
        m->rev--;
}

void fake_meta_compact(struct fake_meta *m)
{
    m->compact_rev = m->rev;
}

void fake_meta_set_down(struct fake_meta *m, bool down)
{
    m->down = down;
}

uint64_t fake_meta_revision(const struct fake_meta *m)
{
    return m->rev;
}

bool fake_meta_has(const struct fake_meta *m, const char *key)
{
    return find((struct fake_meta *)m, key) != NULL;
}

unsigned fake_meta_watches(const struct fake_meta *m)
{
    return m->n_watches;
}

/* ---- Serving calls from the loop ---------------------------------------------------- */

static void serve_range(struct fake_meta *m, struct fm_call *call, int status)
{
    struct vs_meta_kv out[FM_MAX > 256 ? 256 : FM_MAX];
    struct vs_meta_op_result res = {.type = VS_META_OP_RANGE};
    unsigned n = 0;
    for (unsigned i = 0; status == 0 && i < m->n_kvs && n < 256; i++) {
        const struct fm_kv *kv = &m->kvs[i];
        if (!in_range(kv->key, (uint32_t)strlen(kv->key), call->key, call->key_len, call->end,
                      call->end_len))
            continue;
        out[n++] = (struct vs_meta_kv){(const uint8_t *)kv->key, (const uint8_t *)kv->val,
                                       (uint32_t)strlen(kv->key), (uint32_t)strlen(kv->val),
                                       kv->create_rev, kv->mod_rev, kv->version, 0};
    }
    res.kvs = out;
    res.n_kvs = n;
    res.count = n;
    call->range_cb(call->ctx, status, status ? NULL : &res, m->rev);
}

static bool txn_compare(struct fake_meta *m, const struct vs_meta_compare *cmp)
{
    char key[512];
    memcpy(key, cmp->key, cmp->key_len);
    key[cmp->key_len] = 0;
    struct fm_kv *kv = find(m, key);
    uint64_t v = 0;
    if (cmp->target == VS_META_CMP_VALUE) {
        bool eq = kv && strlen(kv->val) == cmp->value_len &&
                  memcmp(kv->val, cmp->value, cmp->value_len) == 0;
        return cmp->op == VS_META_EQ ? eq : !eq;
    }
    if (kv)
        v = cmp->target == VS_META_CMP_VERSION ? kv->version
            : cmp->target == VS_META_CMP_CREATE ? kv->create_rev
                                                : kv->mod_rev;
    switch (cmp->op) {
    case VS_META_EQ: return v == cmp->number;
    case VS_META_NE: return v != cmp->number;
    case VS_META_LT: return v < cmp->number;
    default: return v > cmp->number;
    }
}

static void serve_txn(struct fake_meta *m, struct fm_call *call, int status)
{
    struct vs_meta_op_result ops[8];
    struct vs_meta_txn_result res = {0};
    if (status == 0) {
        bool ok = true;
        for (unsigned i = 0; i < call->txn.n_cmp; i++)
            ok = ok && txn_compare(m, &call->cmp[i]);
        const struct vs_meta_op *list = ok ? call->txn.success : call->txn.failure;
        unsigned n = ok ? call->txn.n_success : call->txn.n_failure;
        m->rev++;
        bool changed = false;
        for (unsigned i = 0; i < n; i++) {
            char key[512], val[512];
            memcpy(key, list[i].key, list[i].key_len);
            key[list[i].key_len] = 0;
            memset(&ops[i], 0, sizeof(ops[i]));
            ops[i].type = list[i].type;
            if (list[i].type == VS_META_OP_PUT) {
                memcpy(val, list[i].value, list[i].value_len);
                val[list[i].value_len] = 0;
                do_put(m, key, val);
                changed = true;
            } else if (list[i].type == VS_META_OP_DELETE) {
                ops[i].deleted = do_delete(m, key);
                changed = changed || ops[i].deleted;
            }
        }
        if (!changed)
            m->rev--;
        res = (struct vs_meta_txn_result){m->rev, ok, n, ops};
    }
    call->txn_cb(call->ctx, status, status ? NULL : &res);
}

static void serve_call(struct fake_meta *m, struct fm_call *call)
{
    int status = m->closing ? -ECANCELED : m->down ? VS_EUNAVAILABLE : 0;
    if (call->kind == CALL_ID)
        call->id_cb(call->ctx, status, status ? 0 : m->cluster_id);
    else if (call->kind == CALL_RANGE)
        serve_range(m, call, status);
    else
        serve_txn(m, call, status);
    free(call);
}

/* Delivers the events of whole revisions from w->next_rev on. */
static void serve_watch(struct fake_meta *m, struct fm_watch *w)
{
    if (w->next_rev <= m->compact_rev && w->next_rev <= m->rev) {
        w->dead = true;
        w->cb(w->ctx, VS_ECOMPACTED, NULL, 0, m->rev);
        return;
    }
    struct vs_meta_event evs[256];
    unsigned n = 0;
    uint64_t upto = 0;
    for (unsigned i = 0; i < m->n_hist && n < 256; i++) {
        const struct fm_ev *e = &m->hist[i];
        if (e->mod_rev < w->next_rev)
            continue;
        if (upto && e->mod_rev != upto && n > 0)
            break; /* one revision per batch */
        upto = e->mod_rev;
        if (!in_range(e->key, (uint32_t)strlen(e->key), w->key, w->key_len, w->end, w->end_len))
            continue;
        evs[n].type = e->type;
        evs[n].kv = (struct vs_meta_kv){(const uint8_t *)e->key, (const uint8_t *)e->val,
                                        (uint32_t)strlen(e->key), e->val ? (uint32_t)strlen(e->val)
                                                                          : 0,
                                        0, e->mod_rev, 0, 0};
        n++;
    }
    if (!upto)
        return;
    w->next_rev = upto + 1;
    if (n)
        w->cb(w->ctx, 0, evs, n, upto);
}

static void timer_cb(uv_timer_t *t)
{
    struct fake_meta *m = t->data;
    unsigned n = m->n_calls;
    struct fm_call *calls[FM_MAX];
    memcpy(calls, m->calls, n * sizeof(*calls));
    m->n_calls = 0;
    for (unsigned i = 0; i < n; i++)
        serve_call(m, calls[i]);
    for (unsigned i = 0; i < m->n_watches && !m->down && !m->closing; i++)
        for (int k = 0; k < 64 && !m->watches[i]->dead; k++)
            serve_watch(m, m->watches[i]);
    for (unsigned i = 0; i < m->n_watches;) {
        if (m->watches[i]->dead) {
            free(m->watches[i]);
            m->watches[i] = m->watches[--m->n_watches];
        } else {
            i++;
        }
    }
    if (m->closing && m->close_cb) {
        void (*cb)(void *) = m->close_cb;
        m->close_cb = NULL;
        cb(m->close_ctx);
    }
}

/* ---- The client_meta_ops ------------------------------------------------------------ */

static struct fm_call *new_call(struct fake_meta *m, uint8_t kind, void *ctx)
{
    VS_ASSERT(m->n_calls < FM_MAX);
    struct fm_call *call = calloc(1, sizeof(*call));
    VS_ASSERT(call);
    call->kind = kind;
    call->ctx = ctx;
    m->calls[m->n_calls++] = call;
    return call;
}

static int fm_cluster_id(void *mv, void (*cb)(void *ctx, int rc, uint64_t id), void *ctx)
{
    struct fake_meta *m = mv;
    if (m->closing)
        return -ECANCELED;
    new_call(m, CALL_ID, ctx)->id_cb = cb;
    return 0;
}

static int fm_range(void *mv, const void *key, uint32_t key_len, const void *end,
                    uint32_t end_len, vs_meta_range_cb cb, void *ctx)
{
    struct fake_meta *m = mv;
    if (m->closing)
        return -ECANCELED;
    VS_ASSERT(key_len < 512 && end_len < 512);
    struct fm_call *call = new_call(m, CALL_RANGE, ctx);
    call->range_cb = cb;
    memcpy(call->key, key, key_len);
    call->key_len = key_len;
    if (end_len)
        memcpy(call->end, end, end_len);
    call->end_len = end_len;
    return 0;
}

static int fm_watch(void *mv, const void *key, uint32_t key_len, const void *end,
                    uint32_t end_len, uint64_t start_rev, vs_meta_watch_cb cb, void *ctx,
                    void **out)
{
    struct fake_meta *m = mv;
    if (m->closing)
        return -ECANCELED;
    VS_ASSERT(m->n_watches < 64);
    struct fm_watch *w = calloc(1, sizeof(*w));
    memcpy(w->key, key, key_len);
    w->key_len = key_len;
    memcpy(w->end, end, end_len);
    w->end_len = end_len;
    w->next_rev = start_rev ? start_rev : m->rev + 1;
    w->cb = cb;
    w->ctx = ctx;
    m->watches[m->n_watches++] = w;
    *out = w;
    return 0;
}

static void fm_watch_cancel(void *mv, void *wv)
{
    struct fake_meta *m = mv;
    for (unsigned i = 0; i < m->n_watches; i++) {
        if (m->watches[i] == wv) {
            free(wv);
            m->watches[i] = m->watches[--m->n_watches];
            return;
        }
    }
}

static int fm_txn(void *mv, const struct vs_meta_txn *txn, vs_meta_txn_cb cb, void *ctx)
{
    struct fake_meta *m = mv;
    if (m->closing)
        return -ECANCELED;
    VS_ASSERT(txn->n_cmp <= 8 && txn->n_success <= 4 && txn->n_failure <= 4);
    struct fm_call *call = new_call(m, CALL_TXN, ctx);
    unsigned b = 0;
    call->txn_cb = cb;
    call->txn = *txn;
    for (unsigned i = 0; i < txn->n_cmp; i++) {
        call->cmp[i] = txn->cmp[i];
        call->cmp[i].key = memcpy(call->bufs[b++], txn->cmp[i].key, txn->cmp[i].key_len);
    }
    for (unsigned i = 0; i < txn->n_success + txn->n_failure; i++) {
        const struct vs_meta_op *src = i < txn->n_success ? &txn->success[i]
                                                           : &txn->failure[i - txn->n_success];
        call->ops[i] = *src;
        call->ops[i].key = memcpy(call->bufs[b++], src->key, src->key_len);
        if (src->value_len)
            call->ops[i].value = memcpy(call->bufs[b++ % 16], src->value, src->value_len);
    }
    call->txn.cmp = call->cmp;
    call->txn.success = call->ops;
    call->txn.failure = call->ops + txn->n_success;
    return 0;
}

static void fm_close(void *mv, void (*cb)(void *ctx), void *ctx)
{
    struct fake_meta *m = mv;
    m->closing = true;
    m->close_cb = cb;
    m->close_ctx = ctx;
    if (!cb)
        m->close_cb = NULL;
}

const struct client_meta_ops fake_meta_ops = {
    .cluster_id = fm_cluster_id,
    .range = fm_range,
    .watch = fm_watch,
    .watch_cancel = fm_watch_cancel,
    .txn = fm_txn,
    .close = fm_close,
};

struct fake_meta *fake_meta_new(uv_loop_t *loop, uint64_t cluster_id)
{
    struct fake_meta *m = calloc(1, sizeof(*m));
    VS_ASSERT(m);
    m->loop = loop;
    m->cluster_id = cluster_id;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, timer_cb, 1, 1);
    uv_unref((uv_handle_t *)&m->timer);
    return m;
}

static void timer_closed(uv_handle_t *h)
{
    struct fake_meta *m = h->data;
    for (unsigned i = 0; i < m->n_kvs; i++) {
        free(m->kvs[i].key);
        free(m->kvs[i].val);
    }
    for (unsigned i = 0; i < m->n_hist; i++) {
        free(m->hist[i].key);
        free(m->hist[i].val);
    }
    for (unsigned i = 0; i < m->n_calls; i++)
        free(m->calls[i]);
    for (unsigned i = 0; i < m->n_watches; i++)
        free(m->watches[i]);
    free(m->hist);
    free(m);
}

void fake_meta_free(struct fake_meta *m)
{
    uv_close((uv_handle_t *)&m->timer, timer_closed);
}
