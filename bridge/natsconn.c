/*
 * natsconn.c - the NATS connection (with automatic reconnects), the
 * JetStream context, and the stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"

void bridge_nap(int64_t ms)
{
	while (ms > 0 && !stop_forced) {
		int64_t step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	stats_error(closure, "disconnected from NATS (reconnecting)");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof url);
	fprintf(stderr, "shmring-nats: reconnected to %s\n", url);
}

static void on_connected(natsConnection *nc, void *closure)
{
	(void)closure;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof url);
	fprintf(stderr, "shmring-nats: connected to %s\n", url);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	(void)nc;
	(void)sub;
	stats_error(closure, "nats: %s", natsStatus_GetText(err));
}

int bridge_connect(struct bridge_nats *bn, const struct bridge_args *a,
                   jsOptions *js_opts, struct bridge_stats *st)
{
	char *list = strdup(a->servers);
	const char *urls[32];
	int n = 0;
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < 32;
	     tok = strtok_r(NULL, ",", &save))
		urls[n++] = tok;
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK) s = natsOptions_SetServers(o, urls, n);
	if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);        /* forever */
	if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
	/* with a callback, a first connect that fails goes on in the background
	 * (without one it would block, for ever with unlimited reconnects) */
	if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, st);
	if (s == NATS_OK) s = natsOptions_SetPingInterval(o, 2000);      /* a dead server is */
	if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(o, 2);          /* noticed in ~4-6 s */
	if (s == NATS_OK) s = natsOptions_SetTimeout(o, 2000);
	if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, on_disconnected, st);
	if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, on_reconnected, st);
	if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, on_async_error, st);
	if (s == NATS_OK) {
		s = natsConnection_Connect(&bn->nc, o);
		if (s == NATS_NOT_YET_CONNECTED)  /* it keeps trying in the background */
			s = NATS_OK;
	}
	if (s == NATS_OK)
		s = natsConnection_JetStream(&bn->js, bn->nc, js_opts);
	natsOptions_Destroy(o);
	free(list);
	if (s != NATS_OK) {
		fprintf(stderr, "shmring-nats %s: connect %s: %s\n", a->mode, a->servers,
		        natsStatus_GetText(s));
		bridge_disconnect(bn);
		return -1;
	}
	return 0;
}

void bridge_disconnect(struct bridge_nats *bn)
{
	if (bn->js)
		jsCtx_Destroy(bn->js);
	if (bn->nc)
		natsConnection_Destroy(bn->nc);
	bn->js = NULL;
	bn->nc = NULL;
	/* The connection's callbacks (disconnected, acks) run on libnats's own
	 * threads and may still come after the destroy: wait for those threads
	 * to end before the caller frees what the callbacks use (ASan saw a
	 * disconnected callback write into freed stats). */
	nats_CloseAndWait(2000);
}

int bridge_ensure_stream(struct bridge_nats *bn, const struct bridge_args *a,
                         struct bridge_stats *st)
{
	int64_t nap = 100;
	while (!stop_requested) {
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetStreamInfo(&si, bn->js, a->stream, NULL, &jerr);
		if (s == NATS_OK) {
			bool ours = false;
			for (int i = 0; i < si->Config->SubjectsLen; i++)
				ours |= !strcmp(si->Config->Subjects[i], a->subject);
			if (!ours || si->Config->SubjectsLen != 1)
				fprintf(stderr, "shmring-nats %s: warning: stream %s does not hold "
				        "exactly the subject %s; ordering needs a stream of its own "
				        "(docs/bridge.md)\n", a->mode, a->stream, a->subject);
			if (!ours) {
				jsStreamInfo_Destroy(si);
				fprintf(stderr, "shmring-nats %s: stream %s does not take subject %s\n",
				        a->mode, a->stream, a->subject);
				return -1;
			}
			jsStreamInfo_Destroy(si);
			return 0;
		}
		if (jerr == JSStreamNotFoundErr) {
			jsStreamConfig cfg;
			jsStreamConfig_Init(&cfg);
			const char *subjects[] = { a->subject };
			cfg.Name = a->stream;
			cfg.Subjects = subjects;
			cfg.SubjectsLen = 1;
			cfg.Storage = js_FileStorage;
			cfg.Replicas = a->replicas;
			cfg.Duplicates = a->dup_window_ms * 1000000;  /* ns */
			s = js_AddStream(&si, bn->js, &cfg, NULL, &jerr);
			if (s == NATS_OK) {
				fprintf(stderr, "shmring-nats %s: created stream %s (subject %s, "
				        "R%d, file storage, duplicate window %lld ms)\n", a->mode,
				        a->stream, a->subject, a->replicas, (long long)a->dup_window_ms);
				jsStreamInfo_Destroy(si);
				return 0;
			}
			/* lost a race with the other bridge: look again */
		}
		stats_error(st, "stream %s: %s (jerr %d)", a->stream, natsStatus_GetText(s), (int)jerr);
		stats_maybe_print(st, a->mode, a->stats_interval, false);
		bridge_nap(nap);
		nap = nap < 1000 ? nap * 2 : 1000;
	}
	return -1;
}
