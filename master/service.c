/*
 * service.c - the dispatch table of cairn.v1.Master: every method of the
 * service and the handler that serves it.
 */
#include "mst_master.h"

const cmn_rpc_method mst_master_methods[] = {
    {"Mkdir", mst_svc_mkdir},
    {"Create", mst_svc_create},
    {"Stat", mst_svc_stat},
    {"List", mst_svc_list},
    {"Rename", mst_svc_rename},
    {"Delete", mst_svc_delete},
    {"Undelete", mst_svc_undelete},
    {"SetGoal", mst_svc_set_goal},
    {"LookupChunks", mst_svc_lookup_chunks},
    {"PrepareWrite", mst_svc_prepare_write},
    {"CompleteWrite", mst_svc_complete_write},
    {"RegisterServer", mst_svc_register},
    {"Heartbeat", mst_svc_heartbeat},
    {"ReportFailedReplica", mst_svc_report_failed},
    {"GetClusterStatus", mst_svc_cluster_status},
    {"Drain", mst_svc_drain},
};

const size_t mst_master_nmethods = sizeof mst_master_methods / sizeof mst_master_methods[0];
