/*
 * demo.c - shmring between processes, next to a pipe (run by `ninja demo`).
 *
 * Two producer processes and two consumer processes share one anonymous ring,
 * inherited across fork(), each declaring its role.  The producers put
 * 64-byte records carrying their id and a sequence number; the consumers
 * take them until the parent closes the ring after the producers are done:
 * shmring_get returns -EPIPE once the ring is closed and empty (as it would
 * once every producer has exited and the ring is empty).  Every record is
 * checked: delivered exactly once (a bitmap in shared memory) and, per
 * consumer, in each producer's order.
 *
 * The children start together: each arrives at a latch (shmring_latch.h)
 * once set up, and the parent then opens a start gate for all of them.
 *
 * Then the same records go through a pipe, with the same processes and a
 * 4-byte length prefix per record.  A pipe keeps writes of up to PIPE_BUF
 * bytes whole, but not reads: two consumers must take turns (a shared mutex)
 * to read a length and then its payload.
 *
 * usage: demo [--records N]   (default 2000000)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_latch.h"

#define NPROD 2
#define NCONS 2
#define REC   64

/* A record: who sent it, its number, and a check word at the far end. */
struct record {
	uint32_t producer;
	uint32_t len;
	uint64_t seq;
	unsigned char filler[REC - 24];
	uint64_t check;
};
_Static_assert(sizeof(struct record) == REC, "a record is 64 bytes");

static uint64_t check_word(uint32_t producer, uint64_t seq)
{
	return (seq * 0x9e3779b97f4a7c15u) ^ producer;
}

/* What the processes share: set up before fork, in MAP_SHARED memory. */
struct shared {
	struct shmring_latch ready;	/* every child is set up ... */
	struct shmring_latch go;	/* ... then the parent opens this gate */
	pthread_mutex_t read_lock;	/* pipe: consumers take turns to read */
	_Atomic uint64_t errors;
	_Atomic int64_t end_ns;		/* when the last consumer finished */
	uint64_t taken[NCONS];		/* records taken, per consumer */
	_Atomic uint64_t seen[];	/* one bit per record: delivered already */
};

static struct shared *sh;
static uint64_t per_producer;		/* records each producer sends */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "demo: %s: %s\n", what, shmring_strerror(err));
	exit(2);
}

/* ---- the two transports, behind the same two calls ------------------- */

struct transport {
	struct shmring *ring;	/* the ring, or NULL for the pipe */
	int rd, wr;		/* the pipe */
};

/* Send one record; 0 or a negative errno. */
static int send_rec(const struct transport *t, const struct record *rec)
{
	if (t->ring)
		return shmring_put(t->ring, rec, sizeof *rec, -1);

	unsigned char frame[4 + REC];
	uint32_t len = REC;
	memcpy(frame, &len, 4);
	memcpy(frame + 4, rec, REC);
	/* up to PIPE_BUF bytes: written whole, never interleaved */
	if (write(t->wr, frame, sizeof frame) != (ssize_t)sizeof frame)
		return -EIO;
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n == 0)
			return got ? -EIO : -EPIPE;	/* end of file */
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

/* Receive one record: its length, or -EPIPE at the end of the stream. */
static ssize_t recv_rec(const struct transport *t, struct record *rec)
{
	if (t->ring)
		return shmring_get(t->ring, rec, sizeof *rec, -1);

	uint32_t len;
	int rc;
	pthread_mutex_lock(&sh->read_lock);
	rc = read_full(t->rd, &len, 4);
	if (rc == 0)
		rc = len == REC ? read_full(t->rd, rec, REC) : -EBADMSG;
	pthread_mutex_unlock(&sh->read_lock);
	return rc ? rc : (ssize_t)len;
}

/* ---- the processes --------------------------------------------------- */

static int producer(const struct transport *t, uint32_t id)
{
	struct record rec;

	memset(&rec, 0, sizeof rec);
	rec.producer = id;
	rec.len = REC;
	for (uint64_t seq = 0; seq < per_producer; seq++) {
		rec.seq = seq;
		rec.check = check_word(id, seq);
		int rc = send_rec(t, &rec);
		if (rc) {
			fprintf(stderr, "demo: producer %u: send: %s\n", id, shmring_strerror(rc));
			return 1;
		}
	}
	return 0;
}

static int consumer(const struct transport *t, int id)
{
	int64_t last[NPROD];
	struct record rec;
	uint64_t taken = 0, bad = 0;
	ssize_t n;

	for (int p = 0; p < NPROD; p++)
		last[p] = -1;
	while ((n = recv_rec(t, &rec)) >= 0) {
		taken++;
		if (n != REC || rec.producer >= NPROD || rec.seq >= per_producer ||
		    rec.check != check_word(rec.producer, rec.seq)) {
			bad++;
			continue;
		}
		if ((int64_t)rec.seq <= last[rec.producer])
			bad++;		/* out of this producer's order */
		last[rec.producer] = (int64_t)rec.seq;
		uint64_t bit = rec.producer * per_producer + rec.seq;
		uint64_t mask = UINT64_C(1) << (bit % 64);
		if (atomic_fetch_or(&sh->seen[bit / 64], mask) & mask)
			bad++;		/* delivered twice */
	}
	if (n != -EPIPE) {
		fprintf(stderr, "demo: consumer %d: receive: %s\n", id, shmring_strerror((int)n));
		bad++;
	}
	sh->taken[id] = taken;
	atomic_fetch_add(&sh->errors, bad);
	int64_t now = now_ns(), end = atomic_load(&sh->end_ns);
	while (now > end && !atomic_compare_exchange_weak(&sh->end_ns, &end, now))
		;
	return bad != 0;
}

static pid_t spawn(const struct transport *t, int is_producer, int id)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		if (t->ring == NULL)	/* keep only the pipe end this side uses */
			close(is_producer ? t->rd : t->wr);
		else	/* roles in place before anyone starts: none is missed */
			shmring_declare(t->ring, is_producer ? SHMRING_PRODUCER : SHMRING_CONSUMER);
		shmring_latch_arrive(&sh->ready);
		shmring_gate_wait(&sh->go, -1);
		_exit(is_producer ? producer(t, (uint32_t)id) : consumer(t, id));
	}
	return pid;
}

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	return !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

struct result {
	double seconds;
	int ok;
	uint64_t taken[NCONS];
};

/* Move every record through t with NPROD producers and NCONS consumers. */
static struct result run(struct transport *t, size_t bitmap_bytes)
{
	pid_t prod[NPROD], cons[NCONS];
	int failed = 0;
	struct result res;

	memset(sh->seen, 0, bitmap_bytes);
	atomic_store(&sh->errors, 0);
	atomic_store(&sh->end_ns, 0);
	shmring_latch_init(&sh->ready, NPROD + NCONS);
	shmring_gate_init(&sh->go);
	fflush(NULL);
	for (int i = 0; i < NCONS; i++)
		cons[i] = spawn(t, 0, i);
	for (int i = 0; i < NPROD; i++)
		prod[i] = spawn(t, 1, i);

	shmring_latch_wait(&sh->ready, -1);	/* all set up */
	int64_t t0 = now_ns();
	shmring_gate_open(&sh->go);		/* go */
	if (!t->ring) {				/* end of file needs every copy closed */
		close(t->rd);
		close(t->wr);
	}
	for (int i = 0; i < NPROD; i++)
		failed |= reap(prod[i]);
	if (t->ring)
		shmring_close(t->ring);		/* end of stream: consumers see -EPIPE */
	for (int i = 0; i < NCONS; i++)
		failed |= reap(cons[i]);

	res.seconds = (double)(atomic_load(&sh->end_ns) - t0) / 1e9;
	res.ok = !failed && atomic_load(&sh->errors) == 0;
	uint64_t total = 0;
	for (int i = 0; i < NCONS; i++)
		total += res.taken[i] = sh->taken[i];
	for (uint64_t b = 0; b < NPROD * per_producer; b++)	/* exactly once: all seen */
		if (!(atomic_load_explicit(&sh->seen[b / 64], memory_order_relaxed) >> (b % 64) & 1))
			res.ok = 0;
	if (total != NPROD * per_producer)
		res.ok = 0;
	return res;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(uint64_t v, char buf[32])
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v), o = 0;

	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

static void print_row(const char *name, uint64_t n, const struct result *r)
{
	char a[32], b[32], c[32], d[32];

	printf("  %-24s %11s %8.3f %12s   (consumers took %s + %s)\n", name, grouped(n, a),
	       r->seconds, grouped((uint64_t)((double)n / r->seconds), b),
	       grouped(r->taken[0], c), grouped(r->taken[1], d));
}

int main(int argc, char **argv)
{
	uint64_t records = 2000000;
	struct shmring *ring;
	pthread_mutexattr_t ma;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--records") && i + 1 < argc) {
			records = strtoull(argv[++i], NULL, 0);
		} else {
			fprintf(stderr, "usage: demo [--records N]\n");
			return 2;
		}
	}
	per_producer = records / NPROD ? records / NPROD : 1;
	records = per_producer * NPROD;

	size_t bitmap_bytes = (records + 63) / 64 * 8;
	sh = mmap(NULL, sizeof *sh + bitmap_bytes, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap", -errno);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&sh->read_lock, &ma);
	signal(SIGPIPE, SIG_IGN);

	char recs[32];
	printf("shmring demo: %d producer and %d consumer processes, %s records of %d bytes\n\n",
	       NPROD, NCONS, grouped(records, recs), REC);

	/* An anonymous ring with the default size: a memfd, shared by fork(). */
	rc = shmring_create(&ring, NULL, NULL);
	if (rc)
		die("shmring_create", rc);
	struct transport tr = { .ring = ring };
	struct result rr = run(&tr, bitmap_bytes);
	shmring_detach(ring);

	int fds[2];
	if (pipe(fds) != 0)
		die("pipe", -errno);
	struct transport tp = { .ring = NULL, .rd = fds[0], .wr = fds[1] };
	struct result rp = run(&tp, bitmap_bytes);

	printf("  %-24s %11s %8s %12s\n", "transport", "records", "seconds", "records/s");
	print_row("shmring (one ring)", records, &rr);
	print_row("pipe (length-prefixed)", records, &rp);
	printf("\n  shmring moved the records %.1fx as fast as the pipe\n",
	       rp.seconds / rr.seconds);

	if (rr.ok && rp.ok) {
		printf("  all records delivered exactly once, in per-producer order\n");
		return 0;
	}
	printf("  FAILED (%s%s): records lost, duplicated, corrupt or out of order\n",
	       rr.ok ? "" : "shmring ", rp.ok ? "" : "pipe");
	return 1;
}
