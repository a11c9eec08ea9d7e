/*
 * nats_bench.c - the baselines beside the bridge in perf/bridge_bench.py:
 * the same records through NATS alone, publisher and subscriber in one
 * process (two connections, so two sockets as with the bridge).
 *
 *   nats_bench core --servers URLS --subject S --count N --size B [--rate R]
 *   nats_bench js   --servers URLS --subject S --stream ST --count N --size B
 *                   [--rate R] [--max-pending P] [--batch F] [--replicas R]
 *
 * core: plain publish / subscribe (no persistence, no acks).
 * js:   JetStream async publish (MaxPending P, as the out bridge) to an
 *       existing stream, and a pull consumer fetching F at a time, acking
 *       each batch (AckAll, as the in bridge).
 * Each record carries its publish time (CLOCK_REALTIME); prints one JSON
 * object: records/s (first to last received) and latency p50/p99.
 * --rate R paces the publisher at R records/s (for latency); 0: flat out.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

struct recv {
	uint64_t *lat;
	_Atomic uint64_t n;   /* written by the receiving thread only */
	uint64_t  want, first, last;
};

static void take(struct recv *r, const char *data, int len)
{
	uint64_t t = now_ns(), sent = 0;
	if (len >= 8)
		memcpy(&sent, data, 8);
	if (!r->first)
		r->first = t;
	r->last = t;
	if (r->n < r->want)
		r->lat[r->n] = t > sent ? t - sent : 0;
	r->n++;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	(void)nc;
	(void)sub;
	take(closure, natsMsg_GetData(m), natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static natsConnection *connect_to(const char *servers)
{
	natsOptions *o;
	natsConnection *nc = NULL;
	char *list = strdup(servers), *save = NULL;
	const char *urls[16];
	int n = 0;
	for (char *t = strtok_r(list, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		urls[n++] = t;
	natsOptions_Create(&o);
	natsOptions_SetServers(o, urls, n);
	natsStatus s = natsConnection_Connect(&nc, o);
	natsOptions_Destroy(o);
	free(list);
	if (s != NATS_OK) {
		fprintf(stderr, "nats_bench: connect: %s\n", natsStatus_GetText(s));
		exit(1);
	}
	return nc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: nats_bench core|js --servers URLS --subject S ...\n");
		return 2;
	}
	bool js_mode = !strcmp(argv[1], "js");
	const char *servers = arg(argc, argv, "--servers", "nats://127.0.0.1:4222");
	const char *subject = arg(argc, argv, "--subject", "bench");
	const char *stream = arg(argc, argv, "--stream", NULL);
	uint64_t count = strtoull(arg(argc, argv, "--count", "100000"), NULL, 0);
	size_t size = strtoull(arg(argc, argv, "--size", "64"), NULL, 0);
	double rate = strtod(arg(argc, argv, "--rate", "0"), NULL);
	int max_pending = atoi(arg(argc, argv, "--max-pending", "256"));
	int batch = atoi(arg(argc, argv, "--batch", "256"));
	if (size < 8)
		size = 8;
	char *buf = calloc(1, size);
	struct recv r = { .lat = calloc(count, sizeof(uint64_t)), .want = count };

	natsConnection *pub = connect_to(servers), *subc = connect_to(servers);
	jsCtx *pjs = NULL, *sjs = NULL;
	natsSubscription *sub = NULL;
	natsStatus s;
	if (js_mode) {
		jsOptions jo;
		jsOptions_Init(&jo);
		jo.PublishAsync.MaxPending = max_pending;
		natsConnection_JetStream(&pjs, pub, &jo);
		natsConnection_JetStream(&sjs, subc, NULL);
		jsStreamConfig sc;   /* made here (file storage, --replicas) if missing */
		jsStreamConfig_Init(&sc);
		const char *subjects[] = { subject };
		sc.Name = stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = atoi(arg(argc, argv, "--replicas", "1"));
		jsStreamInfo *si = NULL;
		if (js_GetStreamInfo(&si, pjs, stream, NULL, NULL) != NATS_OK)
			js_AddStream(&si, pjs, &sc, NULL, NULL);
		jsStreamInfo_Destroy(si);
		jsSubOptions so;
		jsSubOptions_Init(&so);
		so.Stream = stream;
		so.Config.AckPolicy = js_AckAll;
		so.Config.DeliverPolicy = js_DeliverNew;
		s = js_PullSubscribe(&sub, sjs, subject, "nats_bench", NULL, &so, NULL);
	} else {
		s = natsConnection_Subscribe(&sub, subc, subject, on_msg, &r);
		if (s == NATS_OK)
			s = natsSubscription_SetPendingLimits(sub, -1, -1);
		if (s == NATS_OK)
			s = natsConnection_Flush(subc);
	}
	if (s != NATS_OK) {
		fprintf(stderr, "nats_bench: subscribe: %s\n", natsStatus_GetText(s));
		return 1;
	}
	uint64_t t0 = now_ns();
	uint64_t sent = 0;
	while (r.n < count) {
		/* publish what is due (all, unpaced), then receive */
		uint64_t due = rate > 0 ? (uint64_t)((double)(now_ns() - t0) * rate / 1e9) + 1 : count;
		if (due > count)
			due = count;
		for (int k = 0; sent < due && k < 1024; k++, sent++) {
			uint64_t t = now_ns();
			memcpy(buf, &t, 8);
			if (js_mode) {
				jsPubOptions po;
				jsPubOptions_Init(&po);
				po.MaxWait = 5000;
				s = js_PublishAsync(pjs, subject, buf, (int)size, &po);
			} else {
				s = natsConnection_Publish(pub, subject, buf, (int)size);
			}
			if (s != NATS_OK) {
				fprintf(stderr, "nats_bench: publish: %s\n", natsStatus_GetText(s));
				return 1;
			}
		}
		if (js_mode) {
			natsMsgList list = { 0 };
			s = natsSubscription_Fetch(&list, sub, batch, sent < count ? 1 : 1000, NULL);
			for (int i = 0; i < list.Count; i++)
				take(&r, natsMsg_GetData(list.Msgs[i]), natsMsg_GetDataLength(list.Msgs[i]));
			if (list.Count)
				natsMsg_Ack(list.Msgs[list.Count - 1], NULL);
			natsMsgList_Destroy(&list);
		} else {
			if (sent == count)
				natsConnection_Flush(pub);
			struct timespec ts = { 0, sent < count ? 0 : 1000000 };
			if (ts.tv_nsec)
				nanosleep(&ts, NULL);
		}
		if (now_ns() - t0 > 600ull * 1000000000u)
			break;
		/* all sent and nothing more for 2 s: the rest was dropped (core
		 * NATS drops for a slow consumer); report what came */
		if (sent == count && r.last && now_ns() - r.last > 2000000000ull)
			break;
	}
	uint64_t n = r.n < count ? r.n : count;
	qsort(r.lat, n, sizeof *r.lat, cmp);
	double span = r.last > r.first ? (double)(r.last - r.first) / 1e9 : 0;
	printf("{\"mode\": \"%s\", \"received\": %" PRIu64 ", \"records_per_s\": %.0f, "
	       "\"latency_ms_p50\": %.3f, \"latency_ms_p99\": %.3f}\n",
	       js_mode ? "js" : "core", r.n, span > 0 ? (double)n / span : 0,
	       n ? (double)r.lat[n / 2] / 1e6 : 0, n ? (double)r.lat[n * 99 / 100] / 1e6 : 0);
	if (js_mode) {
		jsPubOptions po;   /* no ack handler may run once the context is gone */
		jsPubOptions_Init(&po);
		po.MaxWait = 10000;
		js_PublishAsyncComplete(pjs, &po);
		js_DeleteConsumer(sjs, stream, "nats_bench", NULL, NULL);
		jsCtx_Destroy(pjs);
		jsCtx_Destroy(sjs);
	}
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(pub);
	natsConnection_Destroy(subc);
	free(r.lat);
	free(buf);
	nats_CloseAndWait(1000);
	return 0;
}
