/*
 * rpc_codec.c - protobuf-c <-> gRPC byte buffers, channel arguments and the
 * cluster secret file, shared by the RPC server and client.
 */
#include "rpc_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>

grpc_byte_buffer *xx_rpc_pack(const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  grpc_slice s = grpc_slice_malloc(n);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1); /* takes its own ref */
  grpc_slice_unref(s);
  return bb;
}

/*
 * Messages arrive as a chain of slices and may be compressed, so they are
 * always read through a byte-buffer reader. A single uncompressed slice (the
 * common case for small messages) is decoded in place; otherwise readall
 * makes one contiguous copy.
 */
ProtobufCMessage *xx_rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc) {
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return NULL;
  grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  ProtobufCMessage *msg =
      protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  return msg;
}

void xx_rpc_limit_args(grpc_arg *args, size_t max, grpc_channel_args *out) {
  int lim = max > (size_t)INT32_MAX ? INT32_MAX : (int)max;
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = lim;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = lim;
  out->num_args = 2;
  out->args = args;
}

void xx_rpc_slice_to_str(grpc_slice s, char *buf, size_t n) {
  size_t len = GRPC_SLICE_LENGTH(s);
  if (len >= n) len = n - 1;
  memcpy(buf, GRPC_SLICE_START_PTR(s), len);
  buf[len] = '\0';
}

int xx_rpc_slice_eq(grpc_slice s, const char *str) {
  size_t n = strlen(str);
  return GRPC_SLICE_LENGTH(s) == n && memcmp(GRPC_SLICE_START_PTR(s), str, n) == 0;
}

int cmn_rpc_load_secret(const char *path, char **out) {
  char *data = NULL;
  size_t len = 0;
  int rc = cmn_read_file(path, 4096, &data, &len);
  if (rc == CAIRN_ETOOBIG) return CAIRN_ECONFIG;
  if (rc != 0) return rc;
  char *start = data;
  while (*start && isspace((unsigned char)*start)) start++;
  size_t n = strcspn(start, "\r\n");
  while (n > 0 && isspace((unsigned char)start[n - 1])) n--;
  rc = CAIRN_ECONFIG;
  if (n < 16 || n > CMN_RPC_MAX_SECRET) goto fail;
  for (size_t i = 0; i < n; i++)
    if (!isgraph((unsigned char)start[i])) goto fail;
  *out = cmn_strndup(start, n);
  rc = 0;
fail:
  free(data);
  return rc;
}
