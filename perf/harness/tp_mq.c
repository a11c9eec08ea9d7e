/*
 * tp_mq.c - a POSIX message queue (mq_open), one record per message.
 *
 * Sizing: mq_msgsize = the record size, mq_maxmsg = the common queue size /
 * record size, within three limits: /proc/sys/fs/mqueue/msg_max (default 10)
 * and msgsize_max (default 8192), which a process with CAP_SYS_RESOURCE may
 * exceed up to the kernel's hard limits (65536 messages, 16 MiB), and
 * RLIMIT_MSGQUEUE, the bytes all of a user's queues may hold (819200 by
 * default; only CAP_SYS_RESOURCE raises the hard limit).  As root, when the
 * sysctls are too low for the queue it wants and /proc/sys is writable, the
 * harness raises them (only ever up), says so on stdout, and puts the old
 * values back when it exits.  It then halves mq_maxmsg until mq_open
 * succeeds (RLIMIT_MSGQUEUE), and describe() reports what it got; a record
 * no queue can hold is reported n/a with the limit that stops it.
 *
 * The queue is unlinked as soon as it is open; the parties inherit its
 * descriptor across fork.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define HARD_MSGMAX 65536L
#define HARD_MSGSIZEMAX (16L << 20)

struct mq_ch {
	mqd_t q;
	long maxmsg, msgsize;
	char how[160];
};

static long read_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v;

	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

static int mq_try(struct mq_ch *ch, const struct chan_cfg *cfg, long maxmsg)
{
	static unsigned serial;
	char name[64];
	struct mq_attr attr = { .mq_maxmsg = maxmsg, .mq_msgsize = (long)cfg->rec_size };

	snprintf(name, sizeof name, "/shmring-bench-%d-%u", (int)getpid(), serial++);
	ch->q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | (cfg->nonblock ? O_NONBLOCK : 0),
			0600, &attr);
	if (ch->q == (mqd_t)-1)
		return -errno;
	mq_unlink(name);
	ch->maxmsg = maxmsg;
	ch->msgsize = (long)cfg->rec_size;
	return 0;
}

/* The sysctls as found, and whether this process raised them. */
static long orig_msg = -1, orig_size = -1;
static int raised;

static const char MSG_MAX[] = "/proc/sys/fs/mqueue/msg_max";
static const char MSGSIZE_MAX[] = "/proc/sys/fs/mqueue/msgsize_max";

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static void restore_sysctls(void)
{
	if (!raised)
		return;
	write_long(MSG_MAX, orig_msg);
	write_long(MSGSIZE_MAX, orig_size);
	raised = 0;
}

/* As root: raise msg_max / msgsize_max to at least msg / size. */
static void maybe_raise(long msg, long size)
{
	long cur_msg = read_long(MSG_MAX, 10), cur_size = read_long(MSGSIZE_MAX, 8192);

	if (geteuid() != 0 || (msg <= cur_msg && size <= cur_size))
		return;
	if (orig_msg < 0) {
		orig_msg = cur_msg;
		orig_size = cur_size;
	}
	int ok = 1;
	if (msg > cur_msg)
		ok &= write_long(MSG_MAX, msg) == 0;
	if (size > cur_size)
		ok &= write_long(MSGSIZE_MAX, size) == 0;
	if (!raised && (read_long(MSG_MAX, 10) != orig_msg ||
			read_long(MSGSIZE_MAX, 8192) != orig_size)) {
		raised = 1;
		atexit(restore_sysctls);
	}
	if (ok)
		printf("mq: raised %s %ld -> %ld and %s %ld -> %ld (as root; restored at exit)\n",
		       MSG_MAX, orig_msg, read_long(MSG_MAX, 10), MSGSIZE_MAX, orig_size,
		       read_long(MSGSIZE_MAX, 8192));
}

static int mq_setup_(void **chp, const struct chan_cfg *cfg, char *why, size_t whylen)
{
	struct mq_ch *ch = xcalloc(1, sizeof *ch);
	long want = (long)(cfg->queue_bytes / cfg->rec_size);
	struct rlimit rl;
	int rc = -EINVAL;

	if (want < 1)
		want = 1;
	if (want > HARD_MSGMAX)
		want = HARD_MSGMAX;
	if ((long)cfg->rec_size > HARD_MSGSIZEMAX) {
		snprintf(why, whylen, "record over the kernel's 16 MiB message limit");
		free(ch);
		return 1;
	}
	/* The per-user byte limit: raise the soft limit to the hard one (to
	 * infinity with CAP_SYS_RESOURCE). */
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		struct rlimit inf = { RLIM_INFINITY, RLIM_INFINITY };
		if (setrlimit(RLIMIT_MSGQUEUE, &inf) != 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_MSGQUEUE, &rl);
		}
		getrlimit(RLIMIT_MSGQUEUE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)cfg->rec_size + 64 > rl.rlim_cur) {
		snprintf(why, whylen, "one record is over RLIMIT_MSGQUEUE (%llu bytes; raising it "
			 "needs CAP_SYS_RESOURCE)", (unsigned long long)rl.rlim_cur);
		free(ch);
		return 1;
	}
	maybe_raise(want, (long)cfg->rec_size);
	long sys_msg = read_long(MSG_MAX, 10), sys_size = read_long(MSGSIZE_MAX, 8192);
	long n = want;
	for (; n >= 1; n /= 2) {
		rc = mq_try(ch, cfg, n);
		if (rc == 0)
			break;
		if (rc != -EMFILE && rc != -ENOMEM && rc != -EINVAL) {
			snprintf(why, whylen, "mq_open: %s", strerror(-rc));
			free(ch);
			return rc;
		}
	}
	if (rc) {
		snprintf(why, whylen, "mq_open: %s (msgsize_max %ld, msg_max %ld, RLIMIT_MSGQUEUE %llu)",
			 strerror(-rc), sys_size, sys_msg, (unsigned long long)rl.rlim_cur);
		free(ch);
		return 1;
	}
	snprintf(ch->how, sizeof ch->how,
		 "mq_maxmsg %ld (wanted %ld), mq_msgsize %ld; msg_max %ld, msgsize_max %ld%s, "
		 "RLIMIT_MSGQUEUE %llu", ch->maxmsg, want, ch->msgsize, sys_msg, sys_size,
		 raised ? " (raised)" : "", (unsigned long long)rl.rlim_cur);
	*chp = ch;
	return 0;
}

static void mq_teardown(void *chv, const struct chan_cfg *cfg)
{
	struct mq_ch *ch = chv;

	(void)cfg;
	if (!ch)
		return;
	mq_close(ch->q);
	free(ch);
}

static void mq_describe(void *chv, const struct chan_cfg *cfg, char *buf, size_t len)
{
	struct mq_ch *ch = chv;
	(void)cfg;
	snprintf(buf, len, "%s", ch->how);
}

static int mq_open_ep(struct endpoint *ep, int role)
{
	(void)role;
	return ep_alloc_buf(ep, ep->cfg->rec_size);
}

static void mq_close_ep(struct endpoint *ep)
{
	free(ep->buf);
	ep->buf = NULL;
}

static int mq_send_begin(struct endpoint *ep, size_t len, void **rec)
{
	(void)len;
	*rec = ep->buf;
	return 0;
}

static int mq_send_end(struct endpoint *ep, size_t len)
{
	struct mq_ch *ch = ep->ch;

	while (mq_send(ch->q, (const char *)ep->buf, len, 0) != 0) {
		if (errno == EAGAIN)
			return -EAGAIN;
		if (errno != EINTR) {
			ep_seterr(ep, "mq_send: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static ssize_t mq_recv_begin(struct endpoint *ep, const void **rec)
{
	struct mq_ch *ch = ep->ch;

	for (;;) {
		ssize_t n = mq_receive(ch->q, (char *)ep->buf, ep->buf_len, NULL);
		if (n >= 0) {
			*rec = ep->buf;
			return n;
		}
		if (errno == EAGAIN)
			return -EAGAIN;
		if (errno != EINTR) {
			ep_seterr(ep, "mq_receive: %s", strerror(errno));
			return -errno;
		}
	}
}

static int mq_recv_end(struct endpoint *ep)
{
	(void)ep;
	return 0;
}

const struct transport tp_mq = {
	.name = "mq",
	.desc = "POSIX message queue",
	.setup = mq_setup_,
	.open = mq_open_ep,
	.close = mq_close_ep,
	.teardown = mq_teardown,
	.send_begin = mq_send_begin,
	.send_end = mq_send_end,
	.recv_begin = mq_recv_begin,
	.recv_end = mq_recv_end,
	.describe = mq_describe,
};
