/*
 * config.c - every setting of cairn-master, in one table: the config file,
 * the command-line flags and --help all come from it.
 */
#include "mst_master.h"

#include <stddef.h>

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define MS_DAY (24LL * 3600 * 1000)

static const cmn_config_opt opts[] = {
    CMN_OPT_STRING(mst_config, dir, "dir", "",
                   "data directory: cluster identity, secret, operation log and checkpoints"),
    CMN_OPT_LISTEN(mst_config, listen, "listen", "0.0.0.0:9000",
                 "address of the cairn.v1.Master gRPC service"),
    CMN_OPT_LISTEN(mst_config, http_listen, "http_listen", "0.0.0.0:9100",
                 "address of /metrics, /healthz and /status"),
    CMN_OPT_STRING(mst_config, secret_file, "secret_file", "",
                   "cluster secret file (default <dir>/secret)"),
    CMN_OPT_STRING(mst_config, ready_file, "ready_file", "",
                   "once serving, write the bound addresses here (rpc=HOST:PORT, http=HOST:PORT)"),
    CMN_OPT_INT(mst_config, workers, "workers", 1, 64, "2", "RPC worker threads (one per core is right: handlers never block)"),
    CMN_OPT_SIZE(mst_config, chunk_size, "chunk_size", 64 << 10, 1LL << 32, "64M",
                 "chunk size (fixed for the life of a cluster; small values are for tests)"),
    CMN_OPT_DURATION(mst_config, heartbeat_interval_ms, "heartbeat_interval", 100, 600000, "3s",
                     "how often chunkservers report"),
    CMN_OPT_DURATION(mst_config, dead_after_ms, "dead_after", 500, 3600000, "15s",
                     "a chunkserver silent this long is dead and its replicas are repaired"),
    CMN_OPT_DURATION(mst_config, lease_ms, "lease", 1000, 600000, "60s",
                     "primary lease length"),
    CMN_OPT_DURATION(mst_config, trash_period_ms, "trash_period", 0, 365 * MS_DAY, "3d",
                     "deleted files stay in /.trash this long before their chunks are freed"),
    CMN_OPT_INT(mst_config, default_goal, "default_goal", 1, 9, "3",
                "replicas per chunk for new files"),
    CMN_OPT_BOOL(mst_config, allow_fewer_replicas, "allow_fewer_replicas", "false",
                 "allocate chunks with fewer replicas than the goal when servers are missing "
                 "(and queue them for repair) instead of failing"),
    CMN_OPT_INT(mst_config, checkpoint_records, "checkpoint_records", 100, 100000000, "200000",
                "write a checkpoint after this many log records"),
    CMN_OPT_DURATION(mst_config, checkpoint_interval_ms, "checkpoint_interval", 1000,
                     30 * MS_DAY, "1h", "write a checkpoint at least this often when the log grew"),
    CMN_OPT_INT(mst_config, clones_per_server, "clones_per_server", 1, 64, "2",
                "re-replication clones in flight per server (as source or target)"),
    CMN_OPT_INT(mst_config, creation_cap, "creation_cap", 1, 1000000, "200",
                "new chunks per server per minute before placement prefers others"),
    CMN_OPT_DURATION(mst_config, rebalance_interval_ms, "rebalance_interval", 1000, MS_DAY, "60s",
                     "how often the rebalancer looks for moves"),
    CMN_OPT_INT(mst_config, rebalance_threshold_pct, "rebalance_threshold", 1, 100, "10",
                "move replicas off servers this many percent above the average use"),
    CMN_OPT_INT(mst_config, rebalance_moves, "rebalance_moves", 0, 10000, "4",
                "replica moves the rebalancer starts per round (0 disables it)"),
    CMN_OPT_INT(mst_config, list_limit, "list_limit", 1, 100000, "1000",
                "largest page a List call returns"),
    CMN_OPT_ENUM(mst_config, log_level, "log_level", log_levels, "info", "log verbosity"),
};

const cmn_config_spec mst_config_spec =
    CMN_CONFIG_SPEC("cairn-master", "[--init] --dir DIR",
                    "The cairn metadata master: namespace, chunk table, leases, repair.\n"
                    "  --init   create a new cluster in --dir (cluster id, secret, empty "
                    "metadata) and exit",
                    mst_config, opts);
