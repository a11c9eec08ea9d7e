/*
 * test_max_attach.c - shmring_config.max_attach (issue 11): the table's
 * size is the ring's geometry; 300 processes attached to one ring at once,
 * every record delivered exactly once; the limit and -EUSERS.
 */
#include "common.h"

#include <stdatomic.h>

#include "shmring_latch.h"

TestSuite(max_attach, .timeout = 120, .fini = t_cleanup);

#define MA_PROCS 300
#define MA_PER   20

struct ma_shared {
	_Atomic int declared;
	struct shmring_latch go;
};
static struct shmring *ma_ring;
static struct ma_shared *ma_sh;

static int ma_producer(void *arg)
{
	uint32_t me = (uint32_t)(intptr_t)arg;
	if (shmring_leave(ma_ring, SHMRING_CONSUMER) != 0 ||
	    shmring_declare(ma_ring, SHMRING_PRODUCER) != 0)
		return 10;
	atomic_fetch_add(&ma_sh->declared, 1);
	if (shmring_gate_wait(&ma_sh->go, 60 * T_SEC) != 0)
		return 12;
	for (uint32_t s = 0; s < MA_PER; s++) {
		uint32_t rec[2] = { me, s };
		if (shmring_put(ma_ring, rec, sizeof rec, 30 * T_SEC) != 0)
			return 11;
	}
	shmring_detach(ma_ring);
	return 0;
}

Test(max_attach, three_hundred_processes_records_exactly_once)
{
	struct shmring_config cfg = { .capacity = 1 << 20, .max_attach = 400, /* never full */
	                              .flags = SHMRING_CONSUMER };
	cr_assert_eq(shmring_create(&ma_ring, NULL, &cfg), 0);
	cr_assert_eq(t_info(ma_ring).max_attach, 400);
	ma_sh = t_shared(4096);
	cr_assert_eq(shmring_gate_init(&ma_sh->go), 0);
	static pid_t pids[MA_PROCS];
	for (int i = 0; i < MA_PROCS; i++)
		pids[i] = t_fork(ma_producer, (void *)(intptr_t)i);
	int ok;
	T_POLL_UNTIL(ok, atomic_load(&ma_sh->declared) == MA_PROCS, 60 * T_SEC);
	cr_assert(ok, "only %d of %d producers declared", atomic_load(&ma_sh->declared), MA_PROCS);
	struct shmring_info in = t_info(ma_ring);
	cr_assert_eq(in.producers, MA_PROCS, "all attached at once: %u producers", in.producers);
	cr_assert_eq(in.consumers, 1);
	shmring_gate_open(&ma_sh->go);
	static unsigned char seen[MA_PROCS][MA_PER];
	size_t got = 0;
	uint32_t rec[2];
	ssize_t n;
	while ((n = shmring_get(ma_ring, rec, sizeof rec, 60 * T_SEC)) == (ssize_t)sizeof rec) {
		cr_assert(rec[0] < MA_PROCS && rec[1] < MA_PER, "bad record %u/%u", rec[0], rec[1]);
		cr_assert_eq(seen[rec[0]][rec[1]]++, 0, "record %u/%u twice", rec[0], rec[1]);
		got++;
	}
	cr_assert_eq(n, -EPIPE, "get = %zd after %zu records", n, got);
	cr_assert_eq(got, (size_t)MA_PROCS * MA_PER);
	for (int i = 0; i < MA_PROCS; i++)
		t_expect_exit(pids[i], 0, 30 * T_SEC);
	shmring_detach(ma_ring);
}

Test(max_attach, limit_default_and_eusers)
{
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 4096, .max_attach = SHMRING_MAX_ATTACH_LIMIT + 1 };
	cr_assert_eq(shmring_create(&r, NULL, &cfg), -EINVAL);
	cfg.max_attach = 0;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	cr_assert_eq(t_info(r).max_attach, SHMRING_DEFAULT_MAX_ATTACH);
	cr_assert_geq(SHMRING_DEFAULT_MAX_ATTACH, 256);
	shmring_detach(r);
	cfg.max_attach = 3;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	struct shmring *h[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(shmring_attach_fd(&h[i], shmring_fd(r)), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_declare(h[i], SHMRING_PRODUCER), 0);
	cr_assert_eq(shmring_declare(h[3], SHMRING_PRODUCER), -EUSERS);
	shmring_detach(h[0]);
	cr_assert_eq(shmring_declare(h[3], SHMRING_PRODUCER), 0);
	for (int i = 1; i < 4; i++)
		shmring_detach(h[i]);
	shmring_detach(r);
	/* the largest table works too (70 MiB of file) */
	cfg.max_attach = SHMRING_MAX_ATTACH_LIMIT;
	cr_assert_eq(shmring_create(&r, NULL, &cfg), 0);
	cr_assert_eq(t_info(r).max_attach, SHMRING_MAX_ATTACH_LIMIT);
	cr_assert_eq(shmring_put(r, "x", 1, 0), 0);
	char b;
	cr_assert_eq(shmring_get(r, &b, 1, 0), 1);
	shmring_detach(r);
}
