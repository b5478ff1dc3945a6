/*
 * config.c - every setting of cairn-gateway, in one table: the config file,
 * the command-line flags and --help all come from it. Secrets are never in
 * the table itself, only the paths of files that hold them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_config.h"
#include "gw.h"

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const cmn_config_opt opts[] = {
    CMN_OPT_LISTEN(gw_config, listen, "listen", "127.0.0.1:8443",
                   "IPv4 address and port of the HTTPS API (port 0 picks a free one)"),
    CMN_OPT_STRING(gw_config, tls_cert, "tls_cert", "", "PEM certificate (chain) file"),
    CMN_OPT_STRING(gw_config, tls_key, "tls_key", "", "PEM private key file"),
    CMN_OPT_BOOL(gw_config, plain_http, "plain_http", "false",
                 "serve plain HTTP without a certificate (only behind a TLS proxy)"),
    CMN_OPT_ADDR(gw_config, master, "master", "127.0.0.1:9000", "address of the cairn master"),
    CMN_OPT_STRING(gw_config, secret_file, "secret_file", "",
                   "file holding the cluster secret (required)"),
    CMN_OPT_DURATION(gw_config, cluster_timeout_ms, "cluster_timeout", 1000, 600000, "30s",
                     "how long one cluster operation may take with its retries before the "
                     "request fails with 503"),
    CMN_OPT_STRING(gw_config, db, "db", "",
                   "PostgreSQL connection string, e.g. \"host=/run/pg dbname=cairn\" (required)"),
    CMN_OPT_INT(gw_config, db_pool, "db_pool", 1, 256, "16",
                "PostgreSQL connections at most; requests beyond wait for one"),
    CMN_OPT_DURATION(gw_config, db_wait_ms, "db_wait", 10, 600000, "5s",
                     "how long a request waits for a free database connection (then 503)"),
    CMN_OPT_STRING(gw_config, key_file, "key_file", "",
                   "file with at least 32 bytes of secret key material for access tokens "
                   "and presigned links (required)"),
    CMN_OPT_STRING(gw_config, ready_file, "ready_file", "",
                   "once serving, write url= and pid= lines here"),
    CMN_OPT_STRING(gw_config, data_prefix, "data_dir_prefix", "/gateway",
                   "cluster directory under which document bytes are stored"),
    CMN_OPT_SIZE(gw_config, max_upload, "max_upload", 1, 1LL << 50, "10G",
                 "largest document accepted"),
    CMN_OPT_STRING(gw_config, allowed_types, "allowed_types", "",
                   "comma-separated media types accepted (\"image/*\" allowed; empty: any)"),
    CMN_OPT_STRING(gw_config, allowed_extensions, "allowed_extensions", "",
                   "comma-separated file name extensions accepted (\".pdf,.txt\"; empty: any)"),
    CMN_OPT_INT(gw_config, rate_user, "rate_user", 0, 1000000, "0",
                "requests per second per user (token bucket; 0: no limit)"),
    CMN_OPT_INT(gw_config, rate_ip, "rate_ip", 0, 1000000, "0",
                "requests per second per client address (token bucket; 0: no limit)"),
    CMN_OPT_INT(gw_config, rate_burst, "rate_burst", 1, 1000000, "50",
                "requests allowed at once above the rate"),
    CMN_OPT_SIZE(gw_config, argon2_memory, "argon2_memory", 8 << 10, 4LL << 30, "19M",
                 "argon2id memory cost of password hashes"),
    CMN_OPT_INT(gw_config, argon2_time, "argon2_time", 1, 64, "2", "argon2id passes"),
    CMN_OPT_INT(gw_config, argon2_lanes, "argon2_lanes", 1, 16, "1", "argon2id parallelism"),
    CMN_OPT_DURATION(gw_config, access_ttl_ms, "access_ttl", 1000, 86400000, "15m",
                     "lifetime of an access token"),
    CMN_OPT_DURATION(gw_config, refresh_ttl_ms, "refresh_ttl", 60000, 31536000000LL, "30d",
                     "lifetime of a refresh token"),
    CMN_OPT_DURATION(gw_config, link_max_ttl_ms, "link_max_ttl", 1000, 31536000000LL, "7d",
                     "longest lifetime of a presigned link"),
    CMN_OPT_STRING(gw_config, cors_origins, "cors_origins", "",
                   "comma-separated origins allowed by CORS (empty: none)"),
    CMN_OPT_INT(gw_config, max_connections, "max_connections", 1, 10000, "256",
                "client connections at most (one thread each)"),
    CMN_OPT_DURATION(gw_config, idle_timeout_ms, "idle_timeout", 1000, 3600000, "60s",
                     "an idle connection is closed after this"),
    CMN_OPT_SIZE(gw_config, upload_buffer, "upload_buffer", 64 << 10, 256LL << 20, "16M",
                 "bytes of an upload gathered per cluster write"),
    CMN_OPT_INT(gw_config, upload_depth, "upload_depth", 1, 8, "2",
                "upload buffers per request (one filling while the others are written)"),
    CMN_OPT_SIZE(gw_config, transfer_memory, "transfer_memory", 1 << 20, 1LL << 40, "256M",
                 "memory for the buffers of all uploads and downloads together; transfers "
                 "beyond it get smaller buffers, then 503"),
    CMN_OPT_SIZE(gw_config, small_cache, "small_cache", 0, 1LL << 40, "16M",
                 "memory for the contents of small documents served often (0: off)"),
    CMN_OPT_DURATION(gw_config, cache_ttl_ms, "cache_ttl", 0, 3600000, "10s",
                     "how long permission and token answers are cached (changes made "
                     "through this gateway take effect at once)"),
    CMN_OPT_ENUM(gw_config, log_level, "log_level", log_levels, "info", "log verbosity"),
};

static const cmn_config_spec spec =
    CMN_CONFIG_SPEC("cairn-gateway", NULL,
                    "The cairn gateway: an HTTPS document API on PostgreSQL and the cluster.",
                    gw_config, opts);

/* Checks across settings that the table cannot express. */
static int check(const gw_config *c, char *err, size_t errlen) {
  int has_cert = c->tls_cert && *c->tls_cert, has_key = c->tls_key && *c->tls_key;
  if (has_cert != has_key) {
    snprintf(err, errlen, "tls_cert and tls_key go together");
    return CAIRN_ECONFIG;
  }
  if (!has_cert && !c->plain_http) {
    snprintf(err, errlen, "give tls_cert and tls_key, or plain_http for use behind a proxy");
    return CAIRN_ECONFIG;
  }
  if (has_cert && c->plain_http) {
    snprintf(err, errlen, "plain_http and a certificate exclude each other");
    return CAIRN_ECONFIG;
  }
  if (!c->db || !*c->db) {
    snprintf(err, errlen, "db (a PostgreSQL connection string) is required");
    return CAIRN_ECONFIG;
  }
  if (!c->key_file || !*c->key_file) {
    snprintf(err, errlen, "key_file is required");
    return CAIRN_ECONFIG;
  }
  if (!c->secret_file || !*c->secret_file) {
    snprintf(err, errlen, "secret_file (the cluster secret) is required");
    return CAIRN_ECONFIG;
  }
  if (!c->data_prefix || c->data_prefix[0] != '/' || strlen(c->data_prefix) > 200 ||
      strstr(c->data_prefix, "//") || strcmp(c->data_prefix, "/") == 0) {
    snprintf(err, errlen, "data_dir_prefix must be an absolute cluster path like /gateway");
    return CAIRN_ECONFIG;
  }
  return 0;
}

int gw_config_load(gw_config *cfg, int argc, char **argv, char **help, char *err,
                   size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  int rc = cmn_config_defaults(&spec, cfg, err, errlen);
  if (rc == 0) {
    rc = cmn_config_parse_args(&spec, cfg, argc, argv, NULL, err, errlen);
  }
  if (rc == CMN_CONFIG_HELP) {
    *help = cmn_config_help(&spec);
    cmn_config_free(&spec, cfg);
    return rc;
  }
  if (rc == 0) {
    rc = check(cfg, err, errlen);
  }
  if (rc < 0) {
    cmn_config_free(&spec, cfg);
    return CAIRN_ECONFIG;
  }
  return 0;
}

char *gw_config_dump(const gw_config *cfg) {
  return cmn_config_dump(&spec, cfg);
}

void gw_config_free(gw_config *cfg) {
  cmn_config_free(&spec, cfg);
}
