/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_table.c -- every vstor command, one row each. Keep rows sorted by name
 * within their group; a new command family adds its rows and its cmd_*.c.
 */
#include "cmd.h"

static const struct vs_cmd_opt config_opts[] = {
    {"json", NULL, "print the effective configuration as JSON", false},
    {"doc", NULL, "print the table of every key as Markdown (docs/config.md)", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt placement_simulate_opts[] = {
    {"tree", "FILE", "the placement tree (JSON, docs/placement.md)", true},
    {"pools", "FILE", "the pools, as in config/pools (JSON)", true},
    {"prev", "FILE", "the current PG map, as in config/pgs (JSON); movement is minimised", false},
    {"seed", "N", "seed of fresh layouts (default 0)", false},
    {"out", "FILE", "also write the new PG map to FILE", false},
    {"json", NULL, "print the map and the report as one JSON object", false},
    {"summary", NULL, "print the report only, not every PG", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt net_bench_opts[] = {
    {"seconds", "N", "measured seconds per case (default 2)", false},
    {"quick", NULL, "200 ms per case: a smoke run, not a measurement", false},
    {"listen", "IP:PORT", "only serve, until SIGTERM (for a client on another host)", false},
    {"connect", "IP:PORT", "only run the client, against a `net bench --listen` server", false},
    {"size", "SIZE", "instead of the table: writes and reads of this size (max 4M)", false},
    {"depth", "N", "instead of the table: at this queue depth", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt bench_opts[] = {
    {"image", "NAME", "the image to test (its data is overwritten)", true},
    {"runtime", "SECONDS", "measured seconds per test (default 20, as fio-suite.sh)", false},
    {"ramp", "SECONDS", "unmeasured seconds before each test (default 2)", false},
    {"size", "SIZE", "bytes of the image to use from its start (default: all of it)", false},
    {"label", "NAME", "the first column of the table (default vstor)", false},
    {"no-fill", NULL, "skip writing the range once before the tests", false},
    {"tests", "LIST", "comma-separated test names to run (default: all six)", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt rm_opts[] = {
    {"parallel", "N", "objects deleted at once (default 32)", false},
    {NULL, NULL, NULL, false},
};

/* Pools and images: vstor/cli/cli_pool.c, cli_image.c (docs/commands.md). */
static const struct vs_cmd_opt pool_create_opts[] = {
    {"scheme", "S", "replicated, xor or ec", true},
    {"pg-size", "N", "OSDs per PG (replicas, or data + parity chunks)", true},
    {"pg-minsize", "N", "live OSDs a PG needs to accept I/O", true},
    {"pg-count", "N", "PGs in the pool (powers of two recommended)", true},
    {"failure-domain", "LEVEL", "no two OSDs of a PG under one node of LEVEL (default host)",
     false},
    {"parity-chunks", "N", "xor: 1; ec: parity chunks per stripe", false},
    {"root-node", "NODE", "only OSDs under this placement node", false},
    {"osd-tags", "T,...", "only OSDs carrying all these tags", false},
    {"primary-affinity-tags", "T,...", "prefer primaries carrying these tags", false},
    {"block-size", "SIZE", "object size (default: the cluster's)", false},
    {"bitmap-granularity", "SIZE", "sector of the pool's images (default: the cluster's)", false},
    {"pg-stripe-size", "SIZE", "bytes of an image mapped to one PG in a row", false},
    {"immediate-commit", "MODE", "all, small or none (default: the cluster's)", false},
    {"local-reads", "MODE", "primary, nearest or random", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt json_opts[] = {
    {"json", NULL, "print JSON instead of a table", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt create_opts[] = {
    {"size", "SIZE", "image size: a multiple of 4 KiB (suffixes k, m, g, t)", true},
    {"pool", "POOL", "the pool, by name or id", true},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt resize_opts[] = {
    {"size", "SIZE", "the new size: not smaller than the current one", true},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt mon_opts[] = {
    {"id", "N", "this member's id (> 0)", true},
    {"address", "IP:PORT", "this member's address: listened on, and given to the others", true},
    {"init", NULL, "bootstrap alone, then add the other --members as they come up", false},
    {"members", "LIST", "the initial members, ID=IP:PORT,... (the same list for all)", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_get_opts[] = {
    {"prefix", NULL, "every key that starts with KEY", false},
    {"limit", "N", "at most N keys", false},
    {"keys-only", NULL, "no values", false},
    {"count-only", NULL, "only the number of keys", false},
    {"print-value-only", NULL, "values without keys", false},
    {"serializable", NULL, "read any member's state (not linearizable, no leader needed)", false},
    {"volatile", NULL, "read the leader's volatile keys (statistics)", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_put_opts[] = {
    {"lease", "ID", "attach the key to a lease", false},
    {"prev-kv", NULL, "print the previous value", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_del_opts[] = {
    {"prefix", NULL, "every key that starts with KEY", false},
    {"prev-kv", NULL, "print the deleted keys and values", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_txn_opts[] = {
    {"file", "FILE", "the transaction as JSON (default: stdin)", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_watch_opts[] = {
    {"prefix", NULL, "every key that starts with KEY", false},
    {"rev", "N", "start at revision N (default: the next one)", false},
    {"count", "N", "exit after N events", false},
    {"json", NULL, "print one JSON object per event", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_lease_grant_opts[] = {
    {"id", "ID", "the lease id to use (default: the leader picks)", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_lease_keepalive_opts[] = {
    {"once", NULL, "one keepalive, then exit", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_status_opts[] = {
    {"member", "IP:PORT", "only this member (default: every mon_address)", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_bench_opts[] = {
    {"target", "NAME", "vstor (default) or etcd", false},
    {"endpoints", "LIST", "members to use (default mon_address; etcd: IP:PORT of clients)", false},
    {"workload", "LIST",
     "all (put,get,throughput,watch), fill, stats, keepalive, lincheck, or a list", false},
    {"clients", "N", "concurrent clients for throughput, fill, keepalive, lincheck (default 64)",
     false},
    {"ops", "N", "ops of each latency workload (default 2000)", false},
    {"seconds", "N", "length of throughput, keepalive and lincheck runs (default 5)", false},
    {"keys", "N", "keys for fill (default 100000) or lincheck (default 3)", false},
    {"value-size", "N", "bytes per value (default 100)", false},
    {"history", "FILE", "lincheck: write every op as a JSON line", false},
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt meta_json_opts[] = {
    {"json", NULL, "print JSON", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt disk_format_opts[] = {
    {"force", NULL, "overwrite an existing vstor store or foreign signature", false},
    {"osd-id", "N", "the OSD this drive belongs to", false},
    {"cluster-id", "N", "the cluster this drive belongs to (decimal or 0x hex; default: ask "
     "the metadata service at mon_address)", false},
    {"journal-device", "I", "device (0-based argument) holding the journal (default 0)", false},
    {"data-device", "I", "device (0-based argument) holding the data (default 0)", false},
    {"tombstones", "N", "tombstone slots (default: blocks / 8)", false},
    {"no-direct", NULL, "do not use O_DIRECT (tmpfs)", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt disk_show_opts[] = {
    {"json", NULL, "print JSON", false},
    {"journal", NULL, "dump: the live journal records instead of the objects", false},
    {"no-direct", NULL, "do not use O_DIRECT (tmpfs)", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt disk_bench_opts[] = {
    {"size", "SIZE", "bytes of FILE to use (default 2G); FILE is formatted", false},
    {"runtime", "SECONDS", "seconds per test (default 10)", false},
    {"fio-suite", "PATH", "also run fio-suite.sh raw on FILE and print ratios", false},
    {"shapes", "LIST", "only these tests (comma-separated fio-suite names; store only)", false},
    {"no-drain", NULL, "durable writes fsync without IOSQE_IO_DRAIN, as the OSD does (default)",
     false},
    {"drain", NULL, "durable writes fsync with IOSQE_IO_DRAIN (the store's other mode)", false},
    {"no-fixed-bufs", NULL, "do not register the bench's buffers with io_uring (A/B)", false},
    {"cpu-writes", "N", "instead: N durable 4 KiB writes on the simulated disk, CPU per write",
     false},
    {"ram-objects", "N", "instead: RAM per object with N objects (simulated disk)", false},
    {"no-direct", NULL, "do not use O_DIRECT (tmpfs)", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt osd_opts[] = {
    {"device", "PATH", "the store's first device (file or block device)", true},
    {"device2", "PATH", "its second device, if `vstor disk format` was given one", false},
    {"device3", "PATH", "its third device, if `vstor disk format` was given one", false},
    {"id", "N", "fail unless the store holds this OSD id", false},
    {"no-direct", NULL, "open without O_DIRECT (tmpfs; tests only)", false},
    {NULL, NULL, NULL, false},
};

static const struct vs_cmd_opt demo_opts[] = {
    {"dir", "DIR", "where the cluster lives (default ./vstor-demo); reused by the next run", false},
    {"osds", "N", "OSDs, one file each (default 3)", false},
    {"size", "SIZE", "size of each OSD file (default 2G)", false},
    {"image-size", "SIZE", "size of image 'demo' when it is created (default 1G)", false},
    {"nbd-port", "PORT", "TCP port of the NBD export on 127.0.0.1 (default 10809, or the next "
     "free one)", false},
    {"tcp-only", NULL, "no local transport: the export, clients and OSDs talk over TCP "
     "(default: unix sockets in DIR, net_local_dir)", false},
    {NULL, NULL, NULL, false},
};

const struct vs_cmd vs_commands[] = {
    {"bench", NULL, "measure an image through libvstor: the six tests of fio-suite.sh",
     "Fills the image once with 4 MiB writes, then runs 4 MiB sequential write and read at\n"
     "Q32, 4 KiB random write at T1Q1 with a sync after each write, 4 KiB random read at\n"
     "T1Q1, and 4 KiB random write and read at Q128, and prints IOPS, MB/s, average and\n"
     "p99 latency in the table format of shared/bench/fio-suite.sh. Overwrites the image.",
     VS_SCOPE_CLIENT, bench_opts, 0, 0, vs_cmd_bench},
    {"disk bench", "[FILE]", "benchmark the block store on FILE against fio on the raw file",
     "Formats FILE, runs the six tests of fio-suite.sh through the store (io_uring,\n"
     "O_DIRECT, durable on ack), then fio-suite.sh raw on the same file, as ratios.",
     VS_SCOPE_STORE, disk_bench_opts, 0, 1, vs_cmd_disk_bench},
    {"disk check", "DEVICE...", "verify every checksum of a store offline; exit 1 on damage",
     NULL, VS_SCOPE_STORE, disk_show_opts, 1, 3, vs_cmd_disk_check},
    {"disk dump", "DEVICE...", "list a store's objects or journal records",
     "--journal lists every item of every live record, one line (JSON object) each: a\n"
     "record of several writes gives one per write, with its data's journal offset.\n"
     "A record that does not decode ends the listing with an error (exit 1); a damaged\n"
     "or torn record where the journal ends is named on stderr.",
     VS_SCOPE_STORE, disk_show_opts, 1, 3, vs_cmd_disk_dump},
    {"disk format", "DEVICE...", "create a block store on 1 to 3 files or devices",
     "The first DEVICE holds the superblock and metadata; the journal and the data go to\n"
     "the first device too unless --journal-device / --data-device name another one.\n"
     "Refuses a device that holds a vstor store or another signature, unless --force.",
     VS_SCOPE_STORE | VS_SCOPE_CLIENT, disk_format_opts, 1, 3, vs_cmd_disk_format},
    {"disk info", "DEVICE...", "show a store's superblock and usage", NULL, VS_SCOPE_STORE,
     disk_show_opts, 1, 3, vs_cmd_disk_info},
    {"config", NULL, "show the effective configuration and where each value came from",
     "Reads the config file and flags exactly as every other command does, and prints the\n"
     "result. Useful to check a config file before starting a daemon.",
     ~0u, config_opts, 0, 0, vs_cmd_config},
    {"meta bench", NULL, "benchmark the metadata service (or etcd) with the same workloads",
     "Measures put latency, linearizable get latency, put throughput with many clients and\n"
     "watch delivery delay, against vstor (mon_address) or etcd 3.4 (--target etcd), in\n"
     "one run. docs/performance.md has the figures and the script that runs both.",
     VS_SCOPE_CLIENT, meta_bench_opts, 0, 0, vs_cmd_meta_bench},
    {"meta compact", "REV", "drop the metadata history below revision REV", NULL,
     VS_SCOPE_CLIENT, meta_json_opts, 1, 1, vs_cmd_meta_compact},
    {"meta del", "KEY", "delete a metadata key (or every key with a prefix)", NULL,
     VS_SCOPE_CLIENT, meta_del_opts, 1, 1, vs_cmd_meta_del},
    {"meta get", "KEY", "read a metadata key (or a prefix) -- linearizable by default", NULL,
     VS_SCOPE_CLIENT, meta_get_opts, 1, 1, vs_cmd_meta_get},
    {"meta lease grant", "TTL", "grant a lease (TTL like 10s)", NULL, VS_SCOPE_CLIENT,
     meta_lease_grant_opts, 1, 1, vs_cmd_meta_lease_grant},
    {"meta lease keepalive", "ID", "keep a lease alive until interrupted (or --once)",
     "Prints the lease's state when it changes: alive, unknown (the service is unreachable:\n"
     "the lease may or may not still exist), expired (then exits with status 1).",
     VS_SCOPE_CLIENT, meta_lease_keepalive_opts, 1, 1, vs_cmd_meta_lease_keepalive},
    {"meta lease revoke", "ID", "revoke a lease and delete its keys", NULL, VS_SCOPE_CLIENT,
     meta_json_opts, 1, 1, vs_cmd_meta_lease_revoke},
    {"meta lease ttl", "ID", "the time a lease has left", NULL, VS_SCOPE_CLIENT, meta_json_opts,
     1, 1, vs_cmd_meta_lease_ttl},
    {"meta member add", "ID IP:PORT", "add a member (it joins as a standby, then votes)",
     "Start the new member first (vstor mon --id ID --address IP:PORT, empty data dir, no\n"
     "--init); this waits until it has caught up and became a voter.",
     VS_SCOPE_CLIENT, meta_json_opts, 2, 2, vs_cmd_meta_member_add},
    {"meta member list", NULL, "list the metadata service members", NULL, VS_SCOPE_CLIENT,
     meta_json_opts, 0, 0, vs_cmd_meta_member_list},
    {"meta member remove", "ID", "remove a member", NULL, VS_SCOPE_CLIENT, meta_json_opts, 1, 1,
     vs_cmd_meta_member_remove},
    {"meta put", "KEY VALUE", "write a metadata key (VALUE - reads stdin)", NULL,
     VS_SCOPE_CLIENT, meta_put_opts, 2, 2, vs_cmd_meta_put},
    {"meta status", NULL, "status of each metadata service member", NULL, VS_SCOPE_CLIENT,
     meta_status_opts, 0, 0, vs_cmd_meta_status},
    {"meta txn", NULL, "run a transaction written in JSON (compares, then ops)",
     "Reads {\"compare\": [...], \"success\": [...], \"failure\": [...]} from --file or\n"
     "stdin; see docs/metadata.md (\"vstor meta\") for the format.",
     VS_SCOPE_CLIENT, meta_txn_opts, 0, 0, vs_cmd_meta_txn},
    {"meta watch", "KEY", "print changes of a key (or a prefix) as they happen", NULL,
     VS_SCOPE_CLIENT, meta_watch_opts, 1, 1, vs_cmd_meta_watch},
    {"mon", NULL, "run a member of the metadata service (and, on the leader, the monitor)",
     "Runs one member of the metadata service (Raft on SQLite) in DATA_DIR/mon. On the\n"
     "Raft leader it also runs the monitor tasks. See docs/metadata.md.",
     VS_SCOPE_MON, mon_opts, 0, 0, vs_cmd_mon},
    {"net bench", NULL, "measure the messenger: round-trip latency, throughput, CPU per op",
     "Runs WRITE and READ round trips of 4 KiB and 4 MiB at queue depth 1 and 128\n"
     "over loopback, each case against a fresh server process, and prints ops/s,\n"
     "MB/s, latency (average, p50, p99) and the CPU time client and server spent\n"
     "per op. The first row is a plain blocking socket ping-pong with the same\n"
     "bytes: the floor to compare with. See docs/performance.md.",
     VS_SCOPE_CLIENT | VS_SCOPE_OSD, net_bench_opts, 0, 0, vs_cmd_net_bench},
    {"osd", NULL, "run one OSD on its store until SIGTERM",
     "Opens the store (its superblock gives the OSD id and the cluster id, which must be\n"
     "the metadata service's), registers osd/state/<id> on a lease, follows the PG map,\n"
     "peers and serves the PGs it is primary of, and serves every other primary as a\n"
     "secondary (docs/data-path.md). SIGTERM stops the PGs, then revokes the lease.",
     VS_SCOPE_OSD, osd_opts, 0, 0, vs_cmd_osd},
    {"placement simulate", NULL, "compute a PG map from files and report load and movement",
     "Runs the placement solver on a tree, pools and optionally the current map, and prints\n"
     "the new map with a report: each OSD's load against its weight share and its best\n"
     "feasible share, primaries, moved PG members and the solve time. Nothing is written to\n"
     "the cluster. Exit status 1 when a pool cannot be placed (the others still are).",
     VS_SCOPE_GLOBAL, placement_simulate_opts, 0, 0, vs_cmd_placement_simulate},
    {"rm", "NAME", "remove an image: its data objects in parallel, then its metadata",
     "Deletes every object of the image (--parallel at a time; a progress bar on a\n"
     "terminal, a line per 10 % otherwise), syncs, then removes config/inode and the\n"
     "name index in one transaction. Waits out OSD restarts like any client. Exit status\n"
     "1 when the image does not exist or the removal failed.",
     VS_SCOPE_CLIENT, rm_opts, 1, 1, vs_cmd_rm},
    {"serve", NULL, "the node daemon: run this node's mon and OSDs and keep them running",
     "Reads the config file (default /etc/vstor/vstor.conf) and starts, as child\n"
     "processes, the metadata member serve_mon_id (if not 0; its address is entry\n"
     "serve_mon_id of mon_address) and one OSD per entry of osd_devices. A child\n"
     "that dies is restarted after serve_restart_delay, doubling per crash up to\n"
     "serve_restart_delay_max. SIGHUP re-reads the config file and starts, stops\n"
     "or restarts children to match. SIGTERM stops the OSDs, then the mon.",
     VS_SCOPE_SERVE | VS_SCOPE_MON | VS_SCOPE_OSD | VS_SCOPE_STORE | VS_SCOPE_CLIENT, NULL, 0,
     0, vs_cmd_serve},
    {"version", NULL, "print the version of vstor and its libraries", NULL, VS_SCOPE_GLOBAL,
     NULL, 0, 0, vs_cmd_version},
    /* Pools and images: vstor/cli/cli_pool.c, cli_image.c */
    {"create", "NAME", "create an image",
     "Creates an image of --size bytes in --pool. The name must be unique in the cluster;\n"
     "of two concurrent creates of one name exactly one succeeds. Exit status 1 when the\n"
     "name exists or the pool does not, 2 for a bad name or size.",
     VS_SCOPE_CLIENT, create_opts, 1, 1, vs_cmd_create},
    {"info", "NAME", "show one image: pool, number, size, flags, I/O rates", NULL,
     VS_SCOPE_CLIENT, json_opts, 1, 1, vs_cmd_info},
    {"ls", NULL, "list images", NULL, VS_SCOPE_CLIENT, json_opts, 0, 0, vs_cmd_ls},
    {"pool create", "NAME", "create a pool",
     "Adds a pool to config/pools; the monitor places its PGs at once (docs/monitor.md).\n"
     "Fields and their rules: docs/placement.md section 2. Exit status 1 when the name\n"
     "exists, 2 for invalid options.",
     VS_SCOPE_CLIENT, pool_create_opts, 1, 1, vs_cmd_pool_create},
    {"pool ls", NULL, "list pools with their PGs and images", NULL, VS_SCOPE_CLIENT, json_opts,
     0, 0, vs_cmd_pool_ls},
    {"pool rm", "NAME", "remove a pool that holds no image",
     "Removes the pool from config/pools (the monitor drops its PGs) with its image number\n"
     "allocator, PG histories and image statistics. Refused while the pool holds images.",
     VS_SCOPE_CLIENT, NULL, 1, 1, vs_cmd_pool_rm},
    {"resize", "NAME", "grow an image",
     "Sets the image's size. Shrinking is refused: the data past the new end would stay.",
     VS_SCOPE_CLIENT, resize_opts, 1, 1, vs_cmd_resize},
    {"demo", NULL, "a complete cluster on this machine in one command, served over NBD",
     "Formats OSD files under DIR (first run only), starts 1 mon and the OSDs with the\n"
     "same engine as `vstor serve`, creates pool 'demo' and image 'demo', and exports\n"
     "the image over NBD on DIR/nbd.sock and on TCP 127.0.0.1. It prints what to try\n"
     "next and runs until Ctrl-C. Running it again reuses DIR with its data.",
     VS_SCOPE_SERVE, demo_opts, 0, 0, vs_cmd_demo},
    /* NBD: vstor/nbd/cmd_nbd.c */
    {"map", NULL, "attach an image to a kernel /dev/nbdN device and serve it",
     "Attaches the data to the kernel's nbd driver (generic netlink, or ioctls on old\n"
     "kernels) and serves it from a background process until `vstor unmap`. Needs the\n"
     "nbd kernel module. The data is the vstor image --image NAME, or a local file\n"
     "(--file, developer and test mode). Requests never time out unless nbd_timeout\n"
     "is set, so a slow cluster pauses I/O instead of failing it.",
     VS_SCOPE_NBD | VS_SCOPE_CLIENT, vs_nbd_map_opts, 0, 0, vs_cmd_map},
    {"nbd-export", NULL, "serve an image over the NBD protocol (TCP or unix socket)",
     "Serves one export over NBD (fixed newstyle handshake, structured replies,\n"
     "multi-conn) to any client: qemu, nbdcopy, nbdinfo, fio's nbd engine, nbd-client.\n"
     "Serves the vstor image --image NAME, or a local file or block device (--file,\n"
     "a developer and test mode). Listens on 127.0.0.1:10809 unless --socket\n"
     "or --bind is given (both may be). Stops cleanly on SIGTERM or SIGINT.",
     VS_SCOPE_NBD | VS_SCOPE_CLIENT, vs_nbd_export_opts, 0, 0, vs_cmd_nbd_export},
    {"unmap", "DEVICE", "detach a kernel /dev/nbdN device attached by `vstor map`",
     "Disconnects the device (generic netlink, or an ioctl); the serving process then\n"
     "exits. DEVICE is /dev/nbdN, nbdN or N.",
     VS_SCOPE_NBD, NULL, 1, 1, vs_cmd_unmap},
};

const unsigned vs_command_count = sizeof(vs_commands) / sizeof(vs_commands[0]);
