/*
 * stats.c - the periodic one-line stats on stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bridge.h"

double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void stats_init(struct bridge_stats *st)
{
	memset(st, 0, sizeof *st);
	pthread_mutex_init(&st->err_lock, NULL);
	strcpy(st->last_error, "none");
}

void stats_error(struct bridge_stats *st, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&st->err_lock);
	va_start(ap, fmt);
	vsnprintf(st->last_error, sizeof st->last_error, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&st->err_lock);
}

void stats_maybe_print(struct bridge_stats *st, const char *mode, double interval, bool force)
{
	static double last_t;
	static uint64_t last_records;
	double t = now_seconds();
	if (!last_t) {
		last_t = t;
		last_records = atomic_load(&st->records);
		if (!force)
			return;
	}
	if (!force && (interval <= 0 || t - last_t < interval))
		return;
	uint64_t rec = atomic_load(&st->records);
	double rate = t > last_t ? (double)(rec - last_records) / (t - last_t) : 0;
	char err[sizeof st->last_error];
	pthread_mutex_lock(&st->err_lock);
	memcpy(err, st->last_error, sizeof err);
	pthread_mutex_unlock(&st->err_lock);
	fprintf(stderr, "shmring-nats %s: %.0f records/s, %llu total, in flight %llu, "
	        "retries %llu, duplicates dropped %llu, resyncs %llu, last error: %s\n",
	        mode, rate, (unsigned long long)rec,
	        (unsigned long long)atomic_load(&st->in_flight),
	        (unsigned long long)atomic_load(&st->retries),
	        (unsigned long long)atomic_load(&st->duplicates),
	        (unsigned long long)atomic_load(&st->resyncs), err);
	last_t = t;
	last_records = rec;
}
