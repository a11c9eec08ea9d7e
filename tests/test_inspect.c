/*
 * test_inspect.c - shmring_inspect.h: probe, inspect_open, attachments,
 * check_peers, against real files and real (killed) processes.
 */
#include "common.h"
#include "shmring_inspect.h"

TestSuite(inspect, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* Write bytes to a fresh /dev/shm file named name (mode given). */
static void make_file(const char *name, const void *bytes, size_t len, mode_t mode)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, bytes, len), (ssize_t)len);
	close(fd);
}

Test(inspect, probe_tells_each_kind_of_file_without_waiting)
{
	struct shmring_probe p;
	const char *ring = t_name("ring");
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 8192, .max_record = 1000, .mode = 0640 };
	cr_assert_eq(shmring_create(&r, ring, &cfg), 0);
	cr_assert_eq(shmring_probe(ring, &p), 0);
	cr_assert_eq(p.capacity, 8192);
	cr_assert_eq(p.max_record, 1000);
	cr_assert_eq(p.mode, 0640);
	cr_assert_eq(p.uid, getuid());
	shmring_detach(r);

	cr_assert_eq(shmring_probe(t_name("absent"), &p), -ENOENT);
	cr_assert_eq(shmring_probe("bad/name", &p), -EINVAL);

	int64_t t0 = t_now_ns();
	const char *empty = t_name("empty");
	make_file(empty, "", 0, 0600);
	cr_assert_eq(shmring_probe(empty, &p), -EAGAIN);
	cr_assert_eq(p.file_size, 0);
	/* a header not written yet: zeroes, as shmring_create leaves it
	 * until the magic goes in last */
	static const char zeroes[100000];
	const char *blank = t_name("blank");
	make_file(blank, zeroes, sizeof zeroes, 0600);
	cr_assert_eq(shmring_probe(blank, &p), -EAGAIN);
	/* never waited for a creator (shmring_open waits up to 1 s) */
	cr_assert_lt(t_now_ns() - t0, 500 * T_MS, "probe waited");

	const char *foreign = t_name("foreign");
	make_file(foreign, "hello, world\n", 13, 0600);
	cr_assert_eq(shmring_probe(foreign, &p), -EPROTO);
	cr_assert_eq(p.file_size, 13);
	const char *tiny = t_name("tiny");
	make_file(tiny, "x", 1, 0600);
	cr_assert_eq(shmring_probe(tiny, &p), -EPROTO);

	/* a ring of another layout version (the ABI word at offset 8): a ring
	 * this library cannot read, told apart from a foreign file; and still
	 * removed by shmring_unlink */
	const char *other = t_name("otherabi");
	struct shmring *o = NULL;
	struct shmring_config ocfg = { .capacity = 65536 };
	cr_assert_eq(shmring_create(&o, other, &ocfg), 0);
	shmring_detach(o);
	char opath[PATH_MAX];
	snprintf(opath, sizeof opath, "/dev/shm/%s", other);
	int ofd = open(opath, O_RDWR | O_CLOEXEC);
	cr_assert_geq(ofd, 0);
	uint32_t abi = 3;
	cr_assert_eq(pwrite(ofd, &abi, sizeof abi, 8), (ssize_t)sizeof abi);
	close(ofd);
	cr_assert_eq(shmring_probe(other, &p), -EPROTONOSUPPORT);
	cr_assert_eq(shmring_inspect_open(&o, other), -EPROTONOSUPPORT);
	cr_assert_eq(shmring_open(&o, other), -EPROTONOSUPPORT);
	cr_assert_eq(shmring_unlink(other), 0);

	struct t_shrunk s = t_shrunk_ring("shrunk");
	cr_assert_eq(shmring_probe(s.name, &p), -EBADMSG);
	struct shmring *v = NULL;
	cr_assert_eq(shmring_inspect_open(&v, s.name), -EBADMSG);
	cr_assert_null(v);
	t_shrunk_restore(&s);
	shmring_detach(s.r);

	const char *fifo = t_name("fifo");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/dev/shm/%s", fifo);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(shmring_probe(fifo, &p), -EPROTO); /* and did not block */

	const char *link = t_name("link");
	char lpath[PATH_MAX];
	snprintf(lpath, sizeof lpath, "/dev/shm/%s", link);
	snprintf(path, sizeof path, "/dev/shm/%s", ring);
	cr_assert_eq(symlink(path, lpath), 0);
	cr_assert_eq(shmring_probe(link, &p), -ELOOP);
	t_cleanup();
}

static int sleep_forever(void *arg)
{
	const char *name = arg;
	struct shmring *r;
	if (shmring_open(&r, name) != 0 || shmring_declare(r, SHMRING_PRODUCER) != 0)
		return 1;
	for (;;)
		pause();
}

static int find(const struct shmring_attachment *a, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (a[i].pid == pid)
			return i;
	return -1;
}

Test(inspect, a_killed_process_shows_dead_at_once_and_check_peers_frees_it)
{
	const char *name = t_name("kill");
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 8192 };
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	/* (roles declared after the fork: a declared handle would give the
	 * child an entry of its own, inherited) */
	pid_t kid = t_fork(sleep_forever, (void *)name);
	cr_assert_eq(shmring_declare(r, SHMRING_CONSUMER), 0);
	int ok;
	T_POLL_UNTIL(ok, t_info(r).producers == 1, 10 * T_SEC);
	cr_assert(ok, "the child never became a producer");

	struct shmring *v;
	cr_assert_eq(shmring_inspect_open(&v, name), 0);
	struct shmring_attachment a[SHMRING_MAX_ATTACH];
	int n = shmring_attachments(v, a, SHMRING_MAX_ATTACH);
	cr_assert_eq(n, 2, "entries: %d", n); /* the inspector took none */
	cr_assert_eq(shmring_attachments(v, NULL, 0), 2);
	int me = find(a, n, getpid()), k = find(a, n, kid);
	cr_assert(me >= 0 && k >= 0);
	cr_assert_eq(a[me].roles, SHMRING_CONSUMER);
	cr_assert_eq(a[me].state, SHMRING_ATTACH_LIVE);
	cr_assert_eq(a[k].roles, SHMRING_PRODUCER);
	cr_assert_eq(a[k].state, SHMRING_ATTACH_LIVE);
	cr_assert_eq(shmring_attachments(v, a, 1), 2, "count beyond n");

	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* no sleep, no sweep: dead at once */
	n = shmring_attachments(v, a, SHMRING_MAX_ATTACH);
	cr_assert_eq(n, 2);
	k = find(a, n, kid);
	cr_assert(k >= 0);
	cr_assert_eq(a[k].state, SHMRING_ATTACH_DEAD);
	cr_assert_eq(t_info(v).producers, 1, "not swept yet: still counted");
	cr_assert_eq(shmring_check_peers(v), 1);
	struct shmring_info info = t_info(v);
	cr_assert_eq(info.producers, 0);
	cr_assert_eq(info.consumers, 1);
	cr_assert_eq(info.eof, 1);
	cr_assert_eq(shmring_attachments(v, a, SHMRING_MAX_ATTACH), 1);
	cr_assert_eq(shmring_check_peers(v), 0);
	shmring_detach(v);
	/* the creator's own handle sees end of stream */
	char buf[16];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), -EPIPE);
	shmring_detach(r);
	cr_assert_eq(shmring_unlink(name), 0);
}

Test(inspect, bad_arguments)
{
	cr_assert_eq(shmring_inspect_open(NULL, "x"), -EINVAL);
	cr_assert_eq(shmring_attachments(NULL, NULL, 0), -EINVAL);
	cr_assert_eq(shmring_check_peers(NULL), -EINVAL);
	struct shmring *r = t_ring(4096, 0);
	cr_assert_eq(shmring_attachments(r, NULL, 1), -EINVAL);
	cr_assert_eq(shmring_attachments(r, NULL, 0), 0);
	shmring_detach(r);
}

Test(inspect, traffic_counts_slots_put_and_taken_and_inspection_takes_no_entry)
{
	const char *name = t_name("traffic");
	struct shmring *r;
	struct shmring_config cfg = { .capacity = 8192 };
	cr_assert_eq(shmring_create(&r, name, &cfg), 0);
	struct shmring *v;
	cr_assert_eq(shmring_inspect_open(&v, name), 0);
	struct shmring_traffic t;
	cr_assert_eq(shmring_traffic(v, &t), 0);
	cr_assert_eq(t.put_slots, 0);
	cr_assert_eq(t.taken_slots, 0);
	char buf[200] = { 0 };
	cr_assert_eq(shmring_put(r, buf, 10, 0), 0);   /* 1 slot */
	cr_assert_eq(shmring_put(r, buf, 0, 0), 0);    /* 1 slot */
	cr_assert_eq(shmring_put(r, buf, 130, 0), 0);  /* 3 slots */
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 10);
	cr_assert_eq(shmring_traffic(v, &t), 0);
	cr_assert_eq(t.put_slots, 5);
	cr_assert_eq(t.taken_slots, 1);
	/* the creator's handle is the only entry: inspecting added none */
	struct shmring_attachment a[4];
	cr_assert_eq(shmring_attachments(v, a, 4), 1);
	cr_assert_eq(a[0].pid, getpid());
	cr_assert_eq(a[0].roles, SHMRING_PRODUCER | SHMRING_CONSUMER);
	cr_assert_eq(shmring_traffic(v, NULL), -EINVAL);
	shmring_detach(v);
	shmring_detach(r);
	cr_assert_eq(shmring_unlink(name), 0);
}
