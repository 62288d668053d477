/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * q1_floor: the latency floor of a replicated T1Q1 op on this machine.
 *
 * vstor's T1Q1 rows (issue 6) compare a client -> OSD (-> OSD) op with one
 * process doing the same io on the raw disk. This program measures the
 * cheapest possible version of each: no event loop, no protocol, no store --
 * each process blocks in exactly the system call it needs, which is the
 * fewest wake-ups any multi-process design can have. What it measures is
 * what the machine charges for the process hops and the second durable
 * write, not vstor's code (docs/performance.md, "The floor of a replicated
 * T1Q1 op").
 *
 *   q1_floor raw-read  FILE             pread (O_DIRECT) of a random 4 KiB block
 *   q1_floor raw-write FILE             pwrite (O_DIRECT) + fdatasync
 *   q1_floor rep-read  FILE             client -> server over TCP loopback; the
 *                                       server preads, sends the 4 KiB back
 *   q1_floor rtt       FILE             a request to another process and its
 *                                       reply over TCP loopback, no io: what one
 *                                       more process on the path costs (FILE unused)
 *   q1_floor rep-write FILE FILE2       client -> P; P forwards the 4 KiB to S,
 *                                       then pwrite + fdatasync on FILE while S
 *                                       does the same on FILE2 and replies;
 *                                       P replies when both are durable
 *
 * Options (before the mode): -t SECONDS (default 5), -s MIB (the part of each
 * file used, default 256; the files must be at least that big), -p (every
 * process spins on its sockets instead of sleeping in recv), -u (unix socket
 * pairs between the processes instead of TCP loopback). Prints one
 * JSON line: mode, ops, mean_us, p50_us, p99_us.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAX_OPS (1u << 22)

static void die(const char *what)
{
    fprintf(stderr, "q1_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64: the block offsets, the same sequence in every mode. */
static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static int open_direct(const char *path)
{
    int fd = open(path, O_RDWR | O_DIRECT);
    if (fd < 0)
        die(path);
    return fd;
}

/* -p: every receive spins (MSG_DONTWAIT) instead of sleeping, in every
 * process: the floor without the network's wake-ups. */
static int poll_sockets;

/* Sends or receives LEN bytes; returns 0 at EOF before the first byte. */
static int full_io_eof(int fd, void *buf, size_t len, int sending)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = sending ? send(fd, (char *)buf + done, len - done, MSG_NOSIGNAL)
                            : recv(fd, (char *)buf + done, len - done,
                                   poll_sockets ? MSG_DONTWAIT : 0);
        if (n < 0 && (errno == EINTR || (errno == EAGAIN && poll_sockets && !sending)))
            continue;
        if (n == 0 && done == 0 && !sending)
            return 0;
        if (n <= 0)
            die(sending ? "send" : "recv");
        done += (size_t)n;
    }
    return 1;
}

static void full_io(int fd, void *buf, size_t len, int sending)
{
    if (!full_io_eof(fd, buf, len, sending))
        die("recv: connection closed");
}

static void durable_write(int fd, const void *buf, uint64_t off)
{
    if (pwrite(fd, buf, BLOCK, (off_t)off) != BLOCK)
        die("pwrite");
    if (fdatasync(fd) < 0)
        die("fdatasync");
}

static void block_read(int fd, void *buf, uint64_t off)
{
    if (pread(fd, buf, BLOCK, (off_t)off) != BLOCK)
        die("pread");
}

/* A listening socket on 127.0.0.1 and an ephemeral port. */
static int listen_any(uint16_t *port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
        die("listen");
    *port = ntohs(a.sin_port);
    return ls;
}

static int nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int accept_one(int ls)
{
    int fd = accept(ls, NULL, NULL);
    if (fd < 0)
        die("accept");
    close(ls);
    return nodelay(fd);
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect");
    return nodelay(fd);
}

/* The request: the block's offset; a write carries the block after it. */
struct req {
    uint64_t off;
};

/* The server of rep-read: a request in, the block out, until EOF. */
static void serve_reads(int conn, int fd, void *buf)
{
    struct req r;
    for (;;) {
        if (!full_io_eof(conn, &r, sizeof(r), 0))
            _exit(0);
        block_read(fd, buf, r.off);
        full_io(conn, buf, BLOCK, 1);
    }
}

/* The server of rtt: a request in, the same out, until EOF. */
static void serve_echo(int conn)
{
    struct req r;
    while (full_io_eof(conn, &r, sizeof(r), 0))
        full_io(conn, &r, sizeof(r), 1);
    _exit(0);
}

/* S of rep-write: a request and its block in, a durable write, an ack out. */
static void serve_writes_secondary(int conn, int fd, void *buf)
{
    struct req r;
    for (;;) {
        if (!full_io_eof(conn, &r, sizeof(r), 0))
            _exit(0);
        full_io(conn, buf, BLOCK, 0);
        durable_write(fd, buf, r.off);
        full_io(conn, &r, sizeof(r), 1);
    }
}

/* P of rep-write: forward first (S works in parallel), then the local write,
 * then S's ack, then the client's. */
static void serve_writes_primary(int conn, int fd, int sec, void *buf)
{
    struct req r;
    for (;;) {
        if (!full_io_eof(conn, &r, sizeof(r), 0))
            _exit(0);
        full_io(conn, buf, BLOCK, 0);
        full_io(sec, &r, sizeof(r), 1);
        full_io(sec, buf, BLOCK, 1);
        durable_write(fd, buf, r.off);
        full_io(sec, &r, sizeof(r), 0);
        full_io(conn, &r, sizeof(r), 1);
    }
}

static void *aligned_block(void)
{
    void *p;
    if (posix_memalign(&p, BLOCK, BLOCK))
        die("posix_memalign");
    memset(p, 0x5a, BLOCK);
    return p;
}

/* -u: unix socket pairs instead of TCP loopback between the processes. */
static int unix_sockets;

/* Forks a server of ROLE (0 reads, 1 S, 2 P whose S is at PEER, 3 echo) and
 * returns this side's connection to it; *PID is the child. */
static int spawn_server(pid_t *pid, const char *file, int role, int peer)
{
    int sv[2] = {-1, -1}, ls = -1;
    uint16_t port = 0;
    if (unix_sockets) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
            die("socketpair");
    } else {
        ls = listen_any(&port);
    }
    *pid = fork();
    if (*pid < 0)
        die("fork");
    if (*pid > 0) {
        if (unix_sockets) {
            close(sv[1]);
            return sv[0];
        }
        close(ls);
        return connect_to(port);
    }
    int fd = open_direct(file);
    void *buf = aligned_block();
    int conn = unix_sockets ? sv[1] : accept_one(ls);
    if (unix_sockets)
        close(sv[0]);
    if (role == 0)
        serve_reads(conn, fd, buf);
    else if (role == 3)
        serve_echo(conn);
    else if (role == 1)
        serve_writes_secondary(conn, fd, buf);
    else
        serve_writes_primary(conn, fd, peer, buf);
    _exit(0);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

enum mode { RAW_READ, RAW_WRITE, REP_READ, REP_WRITE, RTT, N_MODES };
static const char *const mode_names[N_MODES] = {"raw-read", "raw-write", "rep-read",
                                                "rep-write", "rtt"};

/* One measurement: the client's side of its processes and files. */
struct bench {
    enum mode mode;
    int fd;        /* the file, for raw-* */
    int conn;      /* to the server or P, for the others */
    pid_t kids[2]; /* the server(s) */
    void *buf;
    uint64_t blocks;
};

static void bench_start(struct bench *b, const char *file, const char *file2)
{
    int s_conn;
    b->fd = b->conn = -1;
    b->kids[0] = b->kids[1] = 0;
    b->buf = aligned_block();
    switch (b->mode) {
    case RAW_READ:
    case RAW_WRITE:
        b->fd = open_direct(file);
        return;
    case REP_READ:
    case RTT:
        b->conn = spawn_server(&b->kids[0], file, b->mode == RTT ? 3 : 0, -1);
        break;
    default:
        s_conn = spawn_server(&b->kids[1], file2, 1, -1);
        b->conn = spawn_server(&b->kids[0], file, 2, s_conn);
        close(s_conn); /* P's now */
        break;
    }
}

static void bench_op(struct bench *b)
{
    struct req r = {.off = (rnd() % b->blocks) * BLOCK};
    switch (b->mode) {
    case RAW_READ:
        block_read(b->fd, b->buf, r.off);
        break;
    case RAW_WRITE:
        durable_write(b->fd, b->buf, r.off);
        break;
    case REP_READ:
        full_io(b->conn, &r, sizeof(r), 1);
        full_io(b->conn, b->buf, BLOCK, 0);
        break;
    default: /* REP_WRITE and RTT: a request (and the block), then the ack */
        full_io(b->conn, &r, sizeof(r), 1);
        if (b->mode == REP_WRITE)
            full_io(b->conn, b->buf, BLOCK, 1);
        full_io(b->conn, &r, sizeof(r), 0);
        break;
    }
}

static void bench_stop(struct bench *b)
{
    if (b->conn >= 0)
        close(b->conn); /* the servers exit at EOF */
    for (int i = 0; i < 2; i++)
        if (b->kids[i] > 0)
            waitpid(b->kids[i], NULL, 0);
    free(b->buf);
}

/* Runs ops for SECONDS; prints the JSON line. */
static int bench_measure(struct bench *b, double seconds)
{
    uint32_t *lat = malloc(MAX_OPS * sizeof(*lat));
    if (!lat)
        die("malloc");
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), sum = 0;
    size_t n = 0;
    for (uint64_t t0 = now_ns(); n < MAX_OPS && t0 < end; t0 = now_ns()) {
        bench_op(b);
        uint64_t d = now_ns() - t0;
        lat[n++] = (uint32_t)(d > UINT32_MAX ? UINT32_MAX : d);
        sum += d;
    }
    if (n == 0) {
        fprintf(stderr, "q1_floor: no op completed\n");
        free(lat);
        return 1;
    }
    qsort(lat, n, sizeof(*lat), cmp_u32);
    printf("{\"mode\": \"%s\", \"ops\": %zu, \"mean_us\": %.1f, \"p50_us\": %.1f, "
           "\"p99_us\": %.1f}\n",
           mode_names[b->mode], n, (double)sum / (double)n / 1e3, lat[n / 2] / 1e3,
           lat[n * 99 / 100] / 1e3);
    free(lat);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: q1_floor [-t SECONDS] [-s MIB] [-p] [-u] raw-read|raw-write|rep-read|"
                    "rep-write|rtt FILE [FILE2]\n");
    return 2;
}

int main(int argc, char **argv)
{
    double seconds = 5;
    uint64_t mib = 256;
    int opt;
    while ((opt = getopt(argc, argv, "t:s:pu")) != -1) {
        if (opt == 't')
            seconds = atof(optarg);
        else if (opt == 's')
            mib = strtoull(optarg, NULL, 10);
        else if (opt == 'p')
            poll_sockets = 1;
        else if (opt == 'u')
            unix_sockets = 1;
        else
            return usage();
    }
    if (argc - optind < 2 || seconds <= 0 || mib == 0)
        return usage();
    struct bench b = {.mode = N_MODES, .blocks = (mib << 20) / BLOCK};
    for (int m = 0; m < N_MODES; m++)
        if (strcmp(argv[optind], mode_names[m]) == 0)
            b.mode = (enum mode)m;
    const char *file2 = argc - optind > 2 ? argv[optind + 2] : NULL;
    if (b.mode == N_MODES || (b.mode == REP_WRITE && !file2))
        return usage();
    signal(SIGPIPE, SIG_IGN);
    bench_start(&b, argv[optind + 1], file2);
    int rc = bench_measure(&b, seconds);
    bench_stop(&b);
    return rc;
}
