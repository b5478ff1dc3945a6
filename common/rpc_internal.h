/*
 * rpc_internal.h - pieces shared by rpc_server.c and rpc_client.c.
 * Not part of the common library's interface.
 */
#ifndef CMN_RPC_INTERNAL_H
#define CMN_RPC_INTERNAL_H

#include "cmn_rpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

/* Metadata keys. */
#define XX_RPC_AUTH_KEY "authorization"
#define XX_RPC_ERROR_KEY "cairn-error"
#define XX_RPC_BEARER "Bearer "

/* Serialize a protobuf-c message into a new byte buffer (caller destroys). */
grpc_byte_buffer *xx_rpc_pack(const ProtobufCMessage *msg);

/* Decode a received byte buffer as a message of type `desc`. NULL when the
 * bytes are not a valid message. The caller frees the message with
 * protobuf_c_message_free_unpacked. */
ProtobufCMessage *xx_rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc);

/* Channel/server arguments that set both message limits to `max`. `args`
 * must point at 2 grpc_arg slots. */
void xx_rpc_limit_args(grpc_arg *args, size_t max, grpc_channel_args *out);

/* Copy a slice into a NUL-terminated buffer of size n (truncating). */
void xx_rpc_slice_to_str(grpc_slice s, char *buf, size_t n);

/* 1 if the slice equals the C string. */
int xx_rpc_slice_eq(grpc_slice s, const char *str);

#endif
