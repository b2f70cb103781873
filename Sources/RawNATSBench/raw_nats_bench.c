#include "raw_nats_bench.h"

#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    volatile int acked;
    volatile int failed;
} ack_counter;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    ack_counter *counter = (ack_counter *)closure;
    if (pa != NULL) __sync_fetch_and_add(&counter->acked, 1);
    else __sync_fetch_and_add(&counter->failed, 1);
    natsMsg_Destroy(msg);
}

static int fail(natsStatus s, const char *what, char *error, size_t error_len) {
    snprintf(error, error_len, "%s: %s", what, natsStatus_GetText(s));
    return -1;
}

int raw_js_publish_async(const char *url, const char *subject, const char *id_prefix, int count,
                         int payload_size, int max_pending, double *seconds,
                         char *error, size_t error_len) {
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    ack_counter counter = {0, 0};
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s != NATS_OK) return fail(s, "connect", error, error_len);
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = max_pending;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &counter;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) { natsConnection_Destroy(nc); return fail(s, "jetstream", error, error_len); }

    char *payload = malloc((size_t)payload_size);
    memset(payload, 'x', (size_t)payload_size);
    char id[128];
    int64_t start = nats_NowInNanoSeconds();
    for (int i = 0; i < count && s == NATS_OK; i++) {
        natsMsg *msg = NULL;
        s = natsMsg_Create(&msg, subject, NULL, payload, payload_size);
        if (s == NATS_OK) {
            snprintf(id, sizeof(id), "%s-%d", id_prefix, i);
            s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
        }
        if (s == NATS_OK) s = js_PublishMsgAsync(js, &msg, NULL);
        natsMsg_Destroy(msg);
    }
    if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        s = js_PublishAsyncComplete(js, &po);
    }
    int64_t end = nats_NowInNanoSeconds();
    free(payload);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (s != NATS_OK) return fail(s, "publish", error, error_len);
    if (counter.acked != count) {
        snprintf(error, error_len, "%d of %d acknowledged, %d failed", counter.acked, count, counter.failed);
        return -1;
    }
    *seconds = (double)(end - start) / 1e9;
    return 0;
}

int raw_js_fetch_ack(const char *url, const char *stream, const char *durable, int count, int batch,
                     double *seconds, char *error, size_t error_len) {
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode code = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s != NATS_OK) return fail(s, "connect", error, error_len);
    s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK) {
        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Consumer = durable;
        so.ManualAck = true;
        s = js_PullSubscribe(&sub, js, "", durable, NULL, &so, &code);
    }
    int received = 0;
    int64_t start = nats_NowInNanoSeconds();
    while (s == NATS_OK && received < count) {
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, batch, 5000, &code);
        for (int i = 0; s == NATS_OK && i < list.Count; i++) {
            s = natsMsg_Ack(list.Msgs[i], NULL);
            received++;
        }
        natsMsgList_Destroy(&list);
    }
    if (s == NATS_OK) s = natsConnection_Flush(nc);
    int64_t end = nats_NowInNanoSeconds();
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (s != NATS_OK) return fail(s, "fetch", error, error_len);
    *seconds = (double)(end - start) / 1e9;
    return 0;
}
