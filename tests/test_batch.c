/*
 * test_batch.c - shmring_putv (one record from several buffers),
 * shmring_put_many (write()-like partial batches), shmring_get_many
 * (packing, 8-byte alignment, max_recs, cap, -EMSGSIZE).
 */
#include "common.h"

TestSuite(batch, .timeout = T_TIMEOUT);

static size_t align8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

/* ------------------------------------------------------------ putv */

Test(batch, putv_makes_one_record)
{
	struct shmring *r = t_ring(4096, 0);
	char a[10], b[1], c[300];
	t_fill(a, sizeof a, 1);
	t_fill(b, sizeof b, 2);
	t_fill(c, sizeof c, 3);
	struct iovec iov[4] = { { a, sizeof a }, { b, 0 }, { b, sizeof b }, { c, sizeof c } };
	cr_assert_eq(shmring_putv(r, iov, 4, 0), 0);
	struct shmring_info in = t_info(r);
	cr_assert_eq(in.records, 1);
	cr_assert_eq(in.bytes, 311);
	char out[400];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 311);
	cr_assert_eq(memcmp(out, a, 10), 0);
	cr_assert_eq(memcmp(out + 10, b, 1), 0);
	cr_assert_eq(memcmp(out + 11, c, 300), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	shmring_detach(r);
}

Test(batch, putv_single_and_empty_iovecs)
{
	struct shmring *r = t_ring(4096, 0);
	struct iovec one = { "hello", 5 };
	cr_assert_eq(shmring_putv(r, &one, 1, 0), 0);
	struct iovec zeros[3] = { { "x", 0 }, { "y", 0 }, { "z", 0 } };
	cr_assert_eq(shmring_putv(r, zeros, 3, 0), 0);
	char out[16];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 5);
	cr_assert_eq(memcmp(out, "hello", 5), 0);
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 0);
	shmring_detach(r);
}

Test(batch, putv_total_over_max_record_is_emsgsize)
{
	struct shmring *r = t_ring(4096, 100);
	static char buf[100];
	struct iovec iov[3] = { { buf, 40 }, { buf, 40 }, { buf, 21 } };
	cr_assert_eq(shmring_putv(r, iov, 3, 0), -EMSGSIZE);
	iov[2].iov_len = 20;
	cr_assert_eq(shmring_putv(r, iov, 3, 0), 0);
	/* lengths whose sum overflows size_t */
	struct iovec huge[2] = { { buf, SIZE_MAX }, { buf, 2 } };
	cr_assert_eq(shmring_putv(r, huge, 2, 0), -EMSGSIZE);
	cr_assert_eq(shmring_putv(r, iov, -1, 0), -EINVAL);
	cr_assert_eq(shmring_putv(r, NULL, 1, 0), -EINVAL);
	cr_assert_eq(t_info(r).records, 1);
	shmring_detach(r);
}

Test(batch, putv_wraps_and_blocks_like_put)
{
	struct shmring *r = t_ring(4096, 4096);
	static char a[2000], b[2000], out[4096];
	for (int i = 0; i < 200; i++) {
		t_fill(a, sizeof a, (uint64_t)i);
		t_fill(b, sizeof b, (uint64_t)i + 1000);
		size_t la = (size_t)(i * 37) % 2000, lb = (size_t)(i * 91) % 2000;
		struct iovec iov[2] = { { a, la }, { b, lb } };
		cr_assert_eq(shmring_putv(r, iov, 2, 0), 0);
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), (ssize_t)(la + lb));
		cr_assert_eq(memcmp(out, a, la), 0, "iteration %d, first part", i);
		cr_assert_eq(memcmp(out + la, b, lb), 0, "iteration %d, second part", i);
	}
	struct iovec full = { out, 4096 };
	cr_assert_eq(shmring_putv(r, &full, 1, 0), 0);
	cr_assert_eq(shmring_putv(r, &full, 1, 0), -EAGAIN);
	cr_assert_eq(shmring_putv(r, &full, 1, 20 * T_MS), -ETIMEDOUT);
	shmring_detach(r);
}

/* ------------------------------------------------------------ put_many */

Test(batch, put_many_all_fit)
{
	struct shmring *r = t_ring(8192, 0);
	char bufs[6][200];
	struct iovec recs[6];
	for (int i = 0; i < 6; i++) {
		t_fill(bufs[i], sizeof bufs[i], (uint64_t)i);
		recs[i].iov_base = bufs[i];
		recs[i].iov_len = (size_t)i * 40; /* 0, 40, ..., 200 */
	}
	cr_assert_eq(shmring_put_many(r, recs, 6, 0), 6);
	cr_assert_eq(t_info(r).records, 6);
	char out[256];
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), i * 40);
		cr_assert(t_check(out, (size_t)i * 40, (uint64_t)i), "record %d", i);
	}
	shmring_detach(r);
}

Test(batch, put_many_partial_takes_what_fits)
{
	struct shmring *r = t_ring(4096, 4096);
	static char big[4096];
	/* leave exactly 3 slots free */
	cr_assert_eq(shmring_put(r, big, 61 * SHMRING_SLOT_SIZE, 0), 0);
	char bufs[5][64];
	struct iovec recs[5];
	for (int i = 0; i < 5; i++) {
		t_fill(bufs[i], 64, (uint64_t)i + 50);
		recs[i].iov_base = bufs[i];
		recs[i].iov_len = 64; /* one slot each */
	}
	cr_assert_eq(shmring_put_many(r, recs, 5, 0), 3);
	cr_assert_eq(shmring_put_many(r, recs + 3, 2, 0), -EAGAIN, "not even the first fits");
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_put_many(r, recs + 3, 2, 50 * T_MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 50 * T_MS);
	char out[4096];
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), 61 * SHMRING_SLOT_SIZE);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(shmring_get(r, out, sizeof out, 0), 64);
		cr_assert(t_check(out, 64, (uint64_t)i + 50));
	}
	cr_assert_eq(shmring_get(r, out, sizeof out, 0), -EAGAIN);
	/* a partial batch whose second record is larger than the room left */
	cr_assert_eq(shmring_put(r, big, 62 * SHMRING_SLOT_SIZE, 0), 0);
	struct iovec two[2] = { { bufs[0], 64 }, { big, 65 } };
	cr_assert_eq(shmring_put_many(r, two, 2, 0), 1);
	shmring_detach(r);
}

Test(batch, put_many_oversize_record)
{
	struct shmring *r = t_ring(4096, 100);
	static char buf[200];
	struct iovec first_big[2] = { { buf, 101 }, { buf, 1 } };
	cr_assert_eq(shmring_put_many(r, first_big, 2, 0), -EMSGSIZE);
	cr_assert_eq(t_info(r).records, 0);
	struct iovec mid_big[4] = { { buf, 1 }, { buf, 2 }, { buf, 101 }, { buf, 3 } };
	cr_assert_eq(shmring_put_many(r, mid_big, 4, 0), 2, "the batch ends before the big one");
	cr_assert_eq(t_info(r).records, 2);
	cr_assert_eq(shmring_put_many(r, mid_big + 2, 2, 0), -EMSGSIZE);
	cr_assert_eq(shmring_put_many(r, NULL, 1, 0), -EINVAL);
	shmring_detach(r);
}

/* ------------------------------------------------------------ get_many */

Test(batch, get_many_packs_on_8_byte_boundaries)
{
	struct shmring *r = t_ring(8192, 0);
	static const size_t lens[] = { 5, 0, 8, 13, 1, 64, 0, 7 };
	const size_t n = sizeof lens / sizeof lens[0];
	for (size_t i = 0; i < n; i++) {
		char b[64];
		t_fill(b, lens[i], i + 10);
		cr_assert_eq(shmring_put(r, b, lens[i], 0), 0);
	}
	_Alignas(64) static char buf[1024];
	memset(buf, 0xee, sizeof buf);
	struct iovec recs[16];
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 16, 0), (ssize_t)n);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		char *base = recs[i].iov_base;
		cr_assert_eq(recs[i].iov_len, lens[i], "record %zu length", i);
		cr_assert_eq((uintptr_t)base % 8, 0, "record %zu at %p", i, (void *)base);
		cr_assert(base >= buf && base + lens[i] <= buf + sizeof buf, "record %zu outside buf", i);
		cr_assert_eq((size_t)(base - buf), off, "record %zu at offset %zu, expected %zu", i,
		             (size_t)(base - buf), off);
		cr_assert(t_check(base, lens[i], i + 10), "record %zu content", i);
		off = align8(off + lens[i]);
	}
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 16, 0), -EAGAIN);
	shmring_detach(r);
}

Test(batch, get_many_unaligned_buffer)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_put(r, "abc", 3, 0), 0);
	cr_assert_eq(shmring_put(r, "defgh", 5, 0), 0);
	_Alignas(8) static char raw[64];
	char *buf = raw + 3;
	struct iovec recs[4];
	cr_assert_eq(shmring_get_many(r, buf, 60, recs, 4, 0), 2);
	cr_assert_eq(memcmp(recs[0].iov_base, "abc", 3), 0);
	cr_assert_eq(memcmp(recs[1].iov_base, "defgh", 5), 0);
	cr_assert((char *)recs[0].iov_base >= buf);
	cr_assert((char *)recs[1].iov_base + 5 <= buf + 60);
	shmring_detach(r);
}

Test(batch, get_many_respects_max_recs)
{
	struct shmring *r = t_ring(4096, 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(shmring_put(r, &i, sizeof i, 0), 0);
	_Alignas(8) char buf[256];
	struct iovec recs[5];
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 2, 0), 2);
	cr_assert_eq(*(int *)recs[0].iov_base, 0);
	cr_assert_eq(*(int *)recs[1].iov_base, 1);
	cr_assert_eq(t_info(r).records, 3);
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 1, 0), 1);
	cr_assert_eq(*(int *)recs[0].iov_base, 2);
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 5, 0), 2);
	cr_assert_eq(*(int *)recs[0].iov_base, 3);
	cr_assert_eq(*(int *)recs[1].iov_base, 4);
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 0, 0), -EINVAL);
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, NULL, 1, 0), -EINVAL);
	shmring_detach(r);
}

Test(batch, get_many_stops_at_cap)
{
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_put(r, "AAAAA", 5, 0), 0);
	cr_assert_eq(shmring_put(r, "BBBBB", 5, 0), 0);
	cr_assert_eq(shmring_put(r, "CCCCC", 5, 0), 0);
	_Alignas(8) char buf[64];
	struct iovec recs[3];
	/* A at 0..5, B at 8..13, C at 16..21 */
	cr_assert_eq(shmring_get_many(r, buf, 12, recs, 3, 0), 1, "cap 12 holds A only");
	cr_assert_eq(memcmp(recs[0].iov_base, "AAAAA", 5), 0);
	cr_assert_eq(shmring_get_many(r, buf, 13, recs, 3, 0), 2, "cap 13 holds B and C");
	cr_assert_eq(memcmp(recs[0].iov_base, "BBBBB", 5), 0);
	cr_assert_eq(memcmp(recs[1].iov_base, "CCCCC", 5), 0);
	cr_assert_eq((char *)recs[1].iov_base - buf, 8);
	shmring_detach(r);
}

Test(batch, get_many_first_too_big_is_emsgsize)
{
	struct shmring *r = t_ring(4096, 0);
	char in[100];
	t_fill(in, sizeof in, 4);
	cr_assert_eq(shmring_put(r, in, 100, 0), 0);
	_Alignas(8) char buf[128];
	struct iovec recs[2];
	cr_assert_eq(shmring_get_many(r, buf, 99, recs, 2, 0), -EMSGSIZE);
	cr_assert_eq(shmring_next_len(r), 100, "the record stays");
	cr_assert_eq(shmring_get_many(r, buf, 100, recs, 2, 0), 1);
	cr_assert(t_check(recs[0].iov_base, 100, 4));
	/* zero-length record into a zero-capacity buffer is fine */
	cr_assert_eq(shmring_put(r, in, 0, 0), 0);
	cr_assert_eq(shmring_get_many(r, buf, 0, recs, 2, 0), 1);
	cr_assert_eq(recs[0].iov_len, 0);
	shmring_detach(r);
}

Test(batch, get_many_empty_eagain_etimedout)
{
	struct shmring *r = t_ring(4096, 0);
	_Alignas(8) char buf[64];
	struct iovec recs[2];
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 2, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, recs, 2, 60 * T_MS), -ETIMEDOUT);
	int64_t el = t_now_ns() - t0;
	cr_assert_geq(el, 60 * T_MS);
	cr_assert_lt(el, 60 * T_MS + T_WAKE_BOUND_NS);
	shmring_detach(r);
}

/* put_many/get_many around the wrap-around many times. */
Test(batch, many_wrap_around)
{
	struct shmring *r = t_ring(4096, 0);
	uint64_t rng = 42, put_seq = 0, get_seq = 0;
	static char data[16][1024];
	size_t lens[4096];
	_Alignas(8) static char buf[8192];
	for (int it = 0; it < 3000; it++) {
		struct iovec recs[16];
		size_t n = 1 + t_rand(&rng) % 16;
		for (size_t i = 0; i < n; i++) {
			size_t len = t_rand(&rng) % 2 ? t_rand(&rng) % 1025 : t_rand(&rng) % 20;
			t_fill(data[i], len, put_seq + i);
			recs[i].iov_base = data[i];
			recs[i].iov_len = len;
		}
		ssize_t k = shmring_put_many(r, recs, n, 0);
		cr_assert(k == -EAGAIN || (k >= 1 && (size_t)k <= n), "put_many = %zd", k);
		for (ssize_t i = 0; i < k; i++)
			lens[(put_seq + (uint64_t)i) % 4096] = recs[i].iov_len;
		if (k > 0)
			put_seq += (uint64_t)k;
		/* take some */
		size_t cap = 1 + t_rand(&rng) % sizeof buf;
		struct iovec got[16];
		ssize_t g = shmring_get_many(r, buf, cap, got, 1 + t_rand(&rng) % 16, 0);
		if (g == -EMSGSIZE) {
			cr_assert_gt(lens[get_seq % 4096], cap);
			continue;
		}
		if (g == -EAGAIN) {
			cr_assert_eq(get_seq, put_seq);
			continue;
		}
		cr_assert_gt(g, 0, "get_many = %zd", g);
		for (ssize_t i = 0; i < g; i++) {
			cr_assert_eq(got[i].iov_len, lens[get_seq % 4096]);
			cr_assert(t_check(got[i].iov_base, got[i].iov_len, get_seq), "seq %llu",
			          (unsigned long long)get_seq);
			cr_assert((char *)got[i].iov_base + got[i].iov_len <= buf + cap);
			get_seq++;
		}
	}
	cr_assert_gt(put_seq, 3000);
	shmring_detach(r);
}

/* A producer blocked in put_many on a full ring wakes when get_many frees
 * room; a consumer blocked in get_many wakes on put_many. */
static struct shmring *bw_ring;
static int bw_child(void *arg)
{
	(void)arg;
	shmring_set_spin(bw_ring, 0);
	static char big[4096];
	struct iovec recs[2] = { { big, 4096 }, { big, 1 } };
	/* the ring is full: wait for room */
	ssize_t k = shmring_put_many(bw_ring, recs, 2, 10 * T_SEC);
	if (k != 1)
		return 1;
	return 0;
}

Test(batch, put_many_and_get_many_wake_each_other)
{
	bw_ring = t_ring(4096, 4096);
	static char big[4096];
	cr_assert_eq(shmring_put(bw_ring, big, 4096, 0), 0);
	pid_t pid = t_fork(bw_child, NULL);
	int ok;
	T_POLL_UNTIL(ok, t_info(bw_ring).futex_waits >= 1, 10 * T_SEC);
	cr_assert(ok, "producer never slept");
	_Alignas(8) static char buf[8192];
	struct iovec got[2];
	cr_assert_eq(shmring_get_many(bw_ring, buf, sizeof buf, got, 2, 0), 1);
	t_expect_exit(pid, 0, T_WAKE_BOUND_NS);
	cr_assert_eq(shmring_get_many(bw_ring, buf, sizeof buf, got, 2, 5 * T_SEC), 1);
	cr_assert_eq(got[0].iov_len, 4096);
	shmring_detach(bw_ring);
}

/* Batches larger than any internal chunking: all of them, in order. */
Test(batch, put_many_and_get_many_large_batches)
{
	struct shmring *r = t_ring(65536, 0); /* 1024 slots */
	enum { N = 900 };
	static uint32_t vals[N];
	static struct iovec recs[N];
	for (uint32_t i = 0; i < N; i++) {
		vals[i] = i;
		recs[i].iov_base = &vals[i];
		recs[i].iov_len = i % 5 == 0 ? 0 : sizeof vals[i];
	}
	cr_assert_eq(shmring_put_many(r, recs, N, 0), N);
	cr_assert_eq(t_info(r).records, N);
	cr_assert_eq(shmring_put_many(r, recs, N, 0), 1024 - N, "exactly the slots left");
	_Alignas(8) static char buf[65536];
	static struct iovec got[1024];
	uint32_t next = 0;
	while (next < 1024) {
		ssize_t k = shmring_get_many(r, buf, sizeof buf, got, 1024, 0);
		cr_assert_gt(k, 0, "get_many = %zd after %u records", k, next);
		for (ssize_t i = 0; i < k; i++, next++) {
			uint32_t want = next < N ? next : next - N;
			size_t len = want % 5 == 0 ? 0 : sizeof(uint32_t);
			cr_assert_eq(got[i].iov_len, len, "record %u", next);
			if (len)
				cr_assert_eq(memcmp(got[i].iov_base, &want, len), 0, "record %u", next);
		}
	}
	cr_assert_eq(shmring_get_many(r, buf, sizeof buf, got, 1024, 0), -EAGAIN);
	shmring_detach(r);
}
