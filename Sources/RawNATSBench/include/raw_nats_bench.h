#ifndef RAW_NATS_BENCH_H
#define RAW_NATS_BENCH_H

#include <stddef.h>

/// Plain loops directly on libnats, the baseline the Swift wrapper is measured against.
/// Each returns 0 on success and writes the elapsed seconds; on failure it returns -1 and
/// writes a message into `error`.

/// JetStream async publish of `count` messages of `payload_size` bytes, each with a unique
/// Nats-Msg-Id, at most `max_pending` awaiting acknowledgement; waits for every ack.
int raw_js_publish_async(const char *url, const char *subject, const char *id_prefix, int count,
                         int payload_size, int max_pending, double *seconds,
                         char *error, size_t error_len);

/// Binds the existing durable pull consumer and fetches + acks `count` messages in batches.
int raw_js_fetch_ack(const char *url, const char *stream, const char *durable, int count, int batch,
                     double *seconds, char *error, size_t error_len);

#endif
