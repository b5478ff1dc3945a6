/*
 * config.c - every setting of cairn-chunkserver, in one table: the config
 * file, the command-line flags and --help all come from it.
 */
#include "cs_server.h"

#include <stddef.h>

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const cmn_config_opt opts[] = {
    CMN_OPT_STRING(cs_config, data_dirs, "data_dirs", "",
                   "comma-separated data directories, one per disk (required)"),
    CMN_OPT_ADDR(cs_config, master, "master", "127.0.0.1:9000", "address of the master"),
    CMN_OPT_STRING(cs_config, secret_file, "secret_file", "",
                   "file holding the cluster secret (required)"),
    CMN_OPT_STRING(cs_config, zone, "zone", "default",
                   "zone or rack label: replicas of a chunk are spread over zones"),
    CMN_OPT_LISTEN(cs_config, listen, "listen", "0.0.0.0:8081",
                   "address of the cairn.v1.Chunkserver gRPC service"),
    CMN_OPT_LISTEN(cs_config, data_listen, "data_listen", "0.0.0.0:8080",
                   "address of the data plane (bulk bytes)"),
    CMN_OPT_LISTEN(cs_config, http_listen, "http_listen", "0.0.0.0:9101",
                   "address of /metrics and /healthz"),
    CMN_OPT_STRING(cs_config, advertise_host, "advertise_host", "",
                   "host name or address the master, clients and peers use to reach this "
                   "server (default: the listen host, or this machine's name for 0.0.0.0)"),
    CMN_OPT_STRING(cs_config, ready_file, "ready_file", "",
                   "once serving, write the bound addresses and the server id here"),
    CMN_OPT_INT(cs_config, workers, "workers", 1, 64, "4", "RPC worker threads"),
    CMN_OPT_SIZE(cs_config, chunk_size, "chunk_size", 64 << 10, 1LL << 30, "64M",
                 "chunk size; must be the cluster's (the master checks it)"),
    CMN_OPT_SIZE(cs_config, push_budget, "push_budget", 1 << 20, 1LL << 40, "256M",
                 "memory for pushed data waiting to be written; pushes beyond it are refused"),
    CMN_OPT_DURATION(cs_config, push_ttl_ms, "push_ttl", 1000, 3600000, "60s",
                     "pushed data never used is dropped after this"),
    CMN_OPT_DURATION(cs_config, rpc_timeout_ms, "rpc_timeout", 100, 600000, "5s",
                     "deadline of two-phase-commit calls between chunkservers"),
    CMN_OPT_SIZE(cs_config, scrub_rate, "scrub_rate", 0, 1LL << 40, "8M",
                 "bytes per second the background scrubber re-verifies (0 turns it off)"),
    CMN_OPT_SIZE(cs_config, reserve, "reserve", 0, 1LL << 50, "0",
                 "free bytes kept on every data dir (0: one chunk)"),
    CMN_OPT_ENUM(cs_config, log_level, "log_level", log_levels, "info", "log verbosity"),
};

const cmn_config_spec cs_config_spec =
    CMN_CONFIG_SPEC("cairn-chunkserver", "--data-dirs DIR[,DIR...] --secret-file FILE",
                    "The cairn chunkserver: stores replicas, serves the data plane and "
                    "commits writes with two-phase commit.",
                    cs_config, opts);
