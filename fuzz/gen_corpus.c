/*
 * gen_corpus.c - writes the fuzzers' seed corpus:
 *
 *   OUT/fuzz_attach/    ring files: rings of a few geometries captured in
 *                       interesting states (empty, records, wrapped, closed,
 *                       claims held by a process that died, join counters in
 *                       use), whole or with their trailing zeroes cut off
 *                       (fuzz_attach grows a file to the size its header
 *                       claims), and corrupted copies of them;
 *   OUT/fuzz_scribble/  programs in scribble.h's language: ordinary traffic,
 *                       and each kind of hostile write followed by the calls
 *                       it threatens.
 *
 * Usage: gen_corpus OUT   (fuzz/build.sh --corpus runs it with
 * OUT = tests/fuzz-corpus).  Deterministic except for the pids and start
 * times in attachment entries.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slot.h"
#include "shmring_batch.h"
#include "shmring_zc.h"
#include "scribble.h"

static const char *out_dir;

static void die(const char *what, int rc)
{
	fprintf(stderr, "gen_corpus: %s: %d (%s)\n", what, rc, shmring_strerror(rc));
	exit(1);
}

static void write_file(const char *target, const char *name, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", out_dir, target);
	mkdir(out_dir, 0755);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* --- fuzz_attach: ring files ---------------------------------------------- */

struct image {
	unsigned char *b;
	size_t len;
};

static struct image capture(struct shmring *r)
{
	struct image im = { malloc(r->map_len), 0 };
	struct stat st;
	if (!im.b || fstat(shmring_fd(r), &st) != 0)
		die("capture", -errno);
	im.len = (size_t)st.st_size;
	if (pread(shmring_fd(r), im.b, im.len, 0) != (ssize_t)im.len)
		die("pread", -errno);
	/* Deterministic seeds: the pids and start times of the processes that
	 * made them become fixed ids no live process has; the sweep clock too. */
	struct ring_header *h = (struct ring_header *)im.b;
	for (uint32_t i = 0; i < h->attach_count; i++) {
		struct attach_entry *e = layout_attach(h, i);
		if (e->id)
			e->id = (ATTACH_PID_MASK - (uint64_t)i) | ((uint64_t)4242 << ATTACH_PID_BITS) |
			        (e->id & ATTACH_PENDING_TAG);
		e->since_ns = 0;
	}
	h->reap_ns = 0;
	return im;
}

/* Save whole (if whole) and with trailing zeroes cut (always). */
static void save(const char *name, const struct image *im, bool whole)
{
	char n[256];
	if (whole) {
		snprintf(n, sizeof n, "%s.whole", name);
		write_file("fuzz_attach", n, im->b, im->len);
	}
	size_t len = im->len;
	while (len > 64 && im->b[len - 1] == 0)
		len--;
	snprintf(n, sizeof n, "%s.cut", name);
	write_file("fuzz_attach", n, im->b, len);
}

static struct shmring *ring(size_t cap, size_t maxrec)
{
	struct shmring_config cfg = { .capacity = cap, .max_record = maxrec };
	struct shmring *r;
	int rc = shmring_create(&r, NULL, &cfg);
	if (rc)
		die("create", rc);
	return r;
}

static unsigned char payload[1 << 16];

static void put(struct shmring *r, size_t len)
{
	int rc = shmring_put(r, payload, len, 0);
	if (rc)
		die("put", rc);
}

static void get(struct shmring *r)
{
	static unsigned char b[1 << 16];
	ssize_t rc = shmring_get(r, b, sizeof b, 0);
	if (rc < 0)
		die("get", (int)rc);
}

static struct slot_meta *meta(struct shmring *r, uint64_t pos)
{
	return meta_at(r, pos);
}

static void poke(struct image *im, size_t off, uint64_t v, int width)
{
	memcpy(im->b + off, &v, (size_t)width);
}

/* In a child: hold a reservation and a peeked record, then die. */
static void die_holding(struct shmring *r, bool consume)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct shmring_span a, b;
		if (shmring_reserve(r, 100, &a, 0) != 0)
			_exit(1);
		memset(a.data, 0xee, 100);
		if (consume && shmring_peek(r, &b, 0) < 0)
			_exit(2);
		if (consume)
			shmring_task_done(r);
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("child holding claims", -ECHILD);
}

static void gen_attach(void)
{
	struct shmring *r;
	struct image im;

	/* fresh rings of several geometries */
	static const size_t geo[][2] = { { 4096, 0 }, { 8192, 8192 }, { 16384, 64 }, { 65536, 1 } };
	for (size_t i = 0; i < sizeof geo / sizeof geo[0]; i++) {
		r = ring(geo[i][0], geo[i][1]);
		im = capture(r);
		char n[64];
		snprintf(n, sizeof n, "empty-%zu-%zu", geo[i][0], geo[i][1]);
		save(n, &im, i == 0);
		free(im.b);
		shmring_detach(r);
	}

	/* records of assorted lengths, some taken */
	r = ring(4096, 0);
	static const size_t lens[] = { 0, 1, 63, 64, 65, 100, 1000, 7, 128 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
		put(r, lens[i]);
	get(r);
	get(r);
	struct shmring_span sp;
	if (shmring_reserve(r, 200, &sp, 0) != 0 || shmring_commit(r, &sp, 70) != 0)
		die("reserve/commit", 0);
	if (shmring_reserve(r, 10, &sp, 0) != 0 || shmring_abort(r, &sp) != 0)
		die("reserve/abort", 0);
	im = capture(r);
	save("records-4096", &im, true);

	/* corrupt copies of it */
	uint64_t t = atomic_load(&r->hdr->cons_head), h = atomic_load(&r->hdr->prod_head);
	size_t moff = (size_t)((unsigned char *)meta(r, t) - (unsigned char *)r->map);
	struct image c = { malloc(im.len), im.len };
	struct { const char *name; size_t off; uint64_t v; int w; } bad[] = {
		{ "len-over-max", moff + 8, r->max_record + 1, 4 },
		{ "len-huge", moff + 8, UINT32_MAX, 4 },
		{ "skip-over-capacity", moff + 12, (uint64_t)SLOT_F_SKIP << 16 | 0, 4 },
		{ "cons-past-prod", offsetof(struct ring_header, cons_head), h + 5, 8 },
		{ "free-past-prod", offsetof(struct ring_header, free_tail), h + 40, 8 },
		{ "prod-laps-ahead", offsetof(struct ring_header, prod_head), h + 7 * r->nslots, 8 },
		{ "prod-closed-bit", offsetof(struct ring_header, prod_head), h | RING_CLOSED, 8 },
		{ "census-huge", offsetof(struct ring_header, census), UINT64_MAX, 8 },
		{ "join-min", offsetof(struct ring_header, join.count), (uint64_t)INT64_MIN, 8 },
		{ "waiters-max", offsetof(struct ring_header, not_empty), UINT32_MAX, 8 },
		{ "bad-magic", 0, 0x31474e49524d4854, 8 },
		{ "abi-3", offsetof(struct ring_header, abi), 3, 4 },
		{ "capacity-not-pow2", offsetof(struct ring_header, capacity), 6144, 8 },
		{ "max-record-over", offsetof(struct ring_header, max_record), 4097, 8 },
		{ "file-size-short", offsetof(struct ring_header, file_size), im.len - 4096, 8 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memcpy(c.b, im.b, im.len);
		poke(&c, bad[i].off, bad[i].v, bad[i].w);
		if (!strcmp(bad[i].name, "skip-over-capacity"))
			poke(&c, moff + 8, r->capacity + 64, 4);
		save(bad[i].name, &c, false);
	}
	/* truncated whole files */
	write_file("fuzz_attach", "truncated-header", im.b, 4096);
	write_file("fuzz_attach", "truncated-data", im.b, im.len - 100);
	free(c.b);
	free(im.b);
	shmring_detach(r);

	/* the inline layout (max_record 48): wrapped, records left, one with
	 * its entry's length forged over max_record */
	r = ring(4096, SHMRING_INLINE_MAX_RECORD);
	for (int i = 0; i < 100; i++) {
		put(r, (size_t)(i * 7) % (SHMRING_INLINE_MAX_RECORD + 1));
		if (i < 95)
			get(r);
	}
	im = capture(r);
	save("inline-wrapped-4096", &im, true);
	t = atomic_load(&r->hdr->cons_head);
	moff = (size_t)((unsigned char *)meta(r, t) - (unsigned char *)r->map);
	poke(&im, moff + 8, SHMRING_INLINE_MAX_RECORD + 1, 4);
	save("inline-len-over-max", &im, false);
	free(im.b);
	shmring_detach(r);

	/* wrapped several times, then closed with records left */
	r = ring(8192, 8192);
	for (int i = 0; i < 300; i++) {
		put(r, (size_t)(i * 37) % 600);
		if (i < 295)
			get(r);
	}
	im = capture(r);
	save("wrapped-8192", &im, true);
	free(im.b);
	shmring_close(r);
	im = capture(r);
	save("closed-8192", &im, false);
	free(im.b);
	shmring_detach(r);

	/* claims held by processes that died, join counters in use */
	r = ring(4096, 0);
	shmring_declare(r, SHMRING_PRODUCER | SHMRING_CONSUMER);
	put(r, 10);
	put(r, 300);
	shmring_task_done(r);
	put(r, 20);
	die_holding(r, false);
	die_holding(r, true);
	put(r, 30);
	im = capture(r);
	save("dead-claims-4096", &im, true);
	/* and a table of nothing but dead entries with wild claims */
	struct ring_header *hd = (struct ring_header *)im.b;
	for (uint32_t e = 0; e < hd->attach_count; e++) {
		struct attach_entry *a = layout_attach(hd, e);
		a->id = ATTACH_PID_MASK - (uint64_t)e;
		a->roles = (uint32_t)(e & 3);
		a->op_busy = UINT64_C(0x8000000000000003) << (e % 4);
		a->got = (uint64_t)e << 58;
		for (unsigned k = 0; k < OPREC_PER_ENTRY; k++) {
			layout_op_rec(hd, e, k)->word = OPREC_WORD((uint64_t)(e * k) * 977 % 10000, (e + k) & 3);
			layout_op_rec(hd, e, k)->extent = OPREC_EXTENT((e + 1) * (k + 1) * 13, k);
		}
	}
	hd->census = CENSUS_JOIN | CENSUS_EVER_PRODUCER | CENSUS_EVER_CONSUMER | 0x00050005;
	save("dead-table-4096", &im, false);
	free(im.b);
	shmring_detach(r);
}

/* --- fuzz_scribble: programs ---------------------------------------------- */

struct prog {
	unsigned char b[512];
	size_t n;
};

static void emit(struct prog *p, int count, ...)
{
	va_list ap;
	va_start(ap, count);
	for (int i = 0; i < count; i++)
		p->b[p->n++] = (unsigned char)va_arg(ap, int);
	va_end(ap);
}

#define E(p, ...) emit(p, (int)(sizeof((int[]){ __VA_ARGS__ }) / sizeof(int)), __VA_ARGS__)
#define U16(x) ((x) & 0xff), (((x) >> 8) & 0xff)

/* Save the program, and its concurrent twin (setup bit 6: the peer's writes
 * run in a thread while the calls run). */
static void save_prog(const char *name, const struct prog *p)
{
	write_file("fuzz_scribble", name, p->b, p->n);
	struct prog c = *p;
	c.b[0] |= 0x40;
	char n[128];
	snprintf(n, sizeof n, "%s-concurrent", name);
	write_file("fuzz_scribble", n, c.b, c.n);
}

/* Some ordinary traffic: three records in, one out. */
static void traffic(struct prog *p)
{
	E(p, OP_PUT, 0, U16(10), 0);
	E(p, OP_PUT, 0, U16(100), 0);
	E(p, OP_PUT, 1, U16(0), 0);
	E(p, OP_GET, 0, U16(4096), 0);
}

/* The calls a hostile write threatens, every side, waits bounded. */
static void calls(struct prog *p)
{
	E(p, OP_NEXT_LEN, 0);
	E(p, OP_GET, 0, U16(4096), 6);
	E(p, OP_PEEK, 0, 0);
	E(p, OP_RELEASE, 0);
	E(p, OP_GET_MANY, 1, U16(8192), 16, 0);
	E(p, OP_PUT, 0, U16(50), 6);
	E(p, OP_RESERVE, 0, U16(70), 0);
	E(p, OP_COMMIT, 0, U16(30));
	E(p, OP_PUT_MANY, 0, 3, U16(1), U16(65), U16(700), 0);
	E(p, OP_INFO, 0);
	E(p, OP_POLL, 3, 3, 6);
	E(p, OP_TASK_DONE, 0);
	E(p, OP_JOIN, 0, 6);
	E(p, OP_REAP, 0);
	E(p, OP_GET, 0, U16(4096), 0);
	E(p, OP_INFO, 1);
}

static void gen_scribble(void)
{
	struct prog p;

	p = (struct prog){ .n = 0 };
	E(&p, 0x18); /* 4 KiB, default max_record, producer + consumer */
	traffic(&p);
	E(&p, OP_PEEK, 0, 0, OP_RESERVE, 1, U16(300), 0, OP_GET_MANY, 0, U16(9000), 8, 0);
	E(&p, OP_COMMIT, 0, U16(20), OP_RELEASE, 0, OP_PUT_MANY, 1, 2, U16(5), U16(6), 0);
	E(&p, OP_RESERVE, 0, U16(10), 0, OP_ABORT, 0, OP_CLOSE, 0);
	calls(&p);
	E(&p, OP_DETACH_B);
	save_prog("traffic", &p);

	/* a committed record's length beyond max_record, and far beyond */
	static const int lens[][2] = { { L_MAXREC, 1 }, { L_NEARMAX, 0 }, { L_CAPACITY, 64 } };
	for (int i = 0; i < 3; i++) {
		p = (struct prog){ .n = 0 };
		E(&p, 0x01);
		traffic(&p);
		E(&p, OP_META, 0, 0, SLOT_COMMITTED, lens[i][0], lens[i][1], 0);
		calls(&p);
		char n[32];
		snprintf(n, sizeof n, "meta-len-%d", i);
		save_prog(n, &p);
	}
	/* a skip record spanning more than the ring */
	p = (struct prog){ .n = 0 };
	E(&p, 0x00);
	traffic(&p);
	E(&p, OP_META, 0, 0, SLOT_COMMITTED, L_CAPACITY, 64, SLOT_F_SKIP);
	calls(&p);
	save_prog("meta-skip-huge", &p);

	/* the indices: absurd values of each */
	static const struct { const char *name; int field, kind, arg; } idx[] = {
		{ "free-ahead", HF_FREE_TAIL, V_PROD, 100 },
		{ "free-ahead-far", HF_FREE_TAIL, V_TOPBIT, 5 },
		{ "prod-laps", HF_PROD_HEAD, V_LAPS, 9 },
		{ "prod-behind", HF_PROD_HEAD, V_FREE, 0x80 },
		{ "cons-ahead", HF_CONS_HEAD, V_PROD, 50 },
		{ "cons-behind", HF_CONS_HEAD, V_FREE, 0xc0 },
		{ "census-max", HF_CENSUS, V_NEARMAX, 0 },
		{ "join-min", HF_JOIN_COUNT, V_TOPBIT, 0 },
		{ "waiters-max", HF_NOT_EMPTY, V_SMALL, 0xff },
		{ "closed-word", HF_CLOSED, V_SMALL, 1 },
		{ "reap-future", HF_REAP_NS, V_NEARMAX, 0 },
	};
	for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
		p = (struct prog){ .n = 0 };
		E(&p, 0x18);
		traffic(&p);
		if (idx[i].kind == V_LAPS)
			E(&p, OP_HDR, idx[i].field, idx[i].kind, idx[i].arg, 0);
		else
			E(&p, OP_HDR, idx[i].field, idx[i].kind, idx[i].arg);
		calls(&p);
		save_prog(idx[i].name, &p);
	}

	/* a dead producer's and a dead consumer's claims, plausible and wild */
	for (int wild = 0; wild < 2; wild++) {
		p = (struct prog){ .n = 0 };
		E(&p, 0x18);
		traffic(&p);
		if (!wild) {
			E(&p, OP_CLAIM, 5, 0, OPREC_PRODUCE, V_PROD, 0, L_SMALL, 3, 1);
			E(&p, OP_HDR, HF_PROD_HEAD, V_PROD, 3);
			E(&p, OP_CLAIM, 5, 1, OPREC_CONSUME, V_CONS, 0xff, L_SMALL, 2, 1);
			E(&p, OP_CLAIM, 5, 2, OPREC_COUNTED, V_FREE, 0, L_SMALL, 8, 4);
		} else {
			E(&p, OP_CLAIM, 6, 0, OPREC_PRODUCE, V_NEARMAX, 0, L_NEARMAX, 0, 0xff);
			E(&p, OP_CLAIM, 6, 63, OPREC_CONSUME, V_LAPS, 3, 0, L_CAPACITY, 0, 9);
			E(&p, OP_CLAIM, 6, 7, OPREC_COUNTED, V_SMALL, 0, L_SLOTS, 0xff, 0xff);
			E(&p, OP_ENTRY, 6, EF_GOT, V_NEARMAX, 0);
			E(&p, OP_HDR, HF_CENSUS, V_RAW, 0, 0, 0, 0, 4, 0, 0, 0);
		}
		E(&p, OP_KILL, 5 + wild, 2 * wild);
		E(&p, OP_REAP, 0);
		calls(&p);
		save_prog(wild ? "dead-claims-wild" : "dead-claims", &p);
	}

	/* our own entry: every op record busy, and the id of someone else */
	p = (struct prog){ .n = 0 };
	E(&p, 0x38);
	traffic(&p);
	E(&p, OP_ENTRY, 0, EF_CLAIM_BUSY, V_NEARMAX, 0);
	E(&p, OP_PUT, 0, U16(5), 0);
	E(&p, OP_ENTRY, 0, EF_CLAIM_BUSY, V_SMALL, 0);
	E(&p, OP_RESERVE, 0, U16(30), 0);
	E(&p, OP_KILL, 0, 1);
	E(&p, OP_REAP, 0);
	E(&p, OP_COMMIT, 0, U16(30));
	calls(&p);
	save_prog("own-entry", &p);

	/* raw bytes over the header's first words and a meta entry */
	p = (struct prog){ .n = 0 };
	E(&p, 0x03);
	traffic(&p);
	E(&p, OP_RAW, 0x80, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8);
	E(&p, OP_RAW, 0x00, 0x10, 0x01, 0, 15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
	calls(&p);
	save_prog("raw", &p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus OUT_DIR\n");
		return 2;
	}
	out_dir = argv[1];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (unsigned char)(i * 31 + 7);
	gen_attach();
	gen_scribble();
	return 0;
}
