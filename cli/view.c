/*
 * view.c - one ring as ls and stat show it: probed without waiting, swept
 * for the dead now, then read (shmring_inspect.h).
 *
 * A file shrunk by someone while we have it mapped raises SIGBUS at the next
 * access to a lost page (docs/threat-model.md, "Truncation").  The reads here
 * hold no claim and no lock, so the tool catches that one signal around
 * them, reports the ring as corrupt (-EFAULT: cut while being read), and
 * goes on to the next.  (A sweep
 * interrupted that way leaves its entry marked; the next sweep redoes it.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static sigjmp_buf bus_jump;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	if (!bus_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(bus_jump, 1);
}

static void catch_sigbus(void)
{
	static bool installed;
	if (installed)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	installed = true;
}

/* fn(arg) with a cut mapping's SIGBUS caught: -EFAULT if it came.  Around
 * the probe and the open too, which map the file and read its header (the
 * census, shmring__census_look): a file cut to nothing and made again in a
 * loop killed ls and stat there, 1 run in 15 to 25, before the reads below
 * were reached (a review found it, 2026-12-06).  A handle being made when
 * the signal came is left mapped: a tool that lists ends soon. */
static int guarded(int (*fn)(void *), void *arg)
{
	catch_sigbus();
	if (sigsetjmp(bus_jump, 1)) {
		bus_armed = 0;
		return -EFAULT;
	}
	bus_armed = 1;
	int rc = fn(arg);
	bus_armed = 0;
	return rc;
}

struct probe_args {
	const char           *name;
	struct shmring_probe *out;
};
static int do_probe(void *arg)
{
	struct probe_args *a = arg;
	return shmring_probe(a->name, a->out);
}
int view_probe(const char *name, struct shmring_probe *out)
{
	struct probe_args a = { name, out };
	return guarded(do_probe, &a);
}

struct stale_args {
	const char *name;
	unsigned    flags;
};
static int do_unlink_stale(void *arg)
{
	struct stale_args *a = arg;
	return shmring_unlink_stale(a->name, a->flags);
}
int view_unlink_stale(const char *name, unsigned flags)
{
	struct stale_args a = { name, flags };
	return guarded(do_unlink_stale, &a);
}

struct open_args {
	struct shmring **ring;
	const char      *name;
};
static int do_open(void *arg)
{
	struct open_args *a = arg;
	return shmring_inspect_open(a->ring, a->name);
}

struct read_args {
	struct shmring   *ring;
	struct ring_view *v;
};
static int do_read(void *arg);
static int read_tables(struct shmring *ring, struct ring_view *v);

/* Reads through a mapping that may be cut; -EFAULT if it was. */
static int read_ring(struct shmring *ring, struct ring_view *v)
{
	struct read_args a = { ring, v };
	return guarded(do_read, &a);
}

static int do_read(void *arg)
{
	struct shmring *ring = ((struct read_args *)arg)->ring;
	struct ring_view *v = ((struct read_args *)arg)->v;
	int rc = shmring_check_peers(ring);
	if (rc >= 0) {
		v->swept = rc;
		rc = shmring_info(ring, &v->info);
	}
	if (rc >= 0)
		rc = shmring_traffic(ring, &v->traffic);
	if (rc >= 0)
		rc = read_tables(ring, v);
	return rc < 0 ? rc : 0;
}

/* The attachment table and (broadcast) the subscribers, sized by a count
 * taken first, with room for a few arrivals in between (more than that are
 * left out of this snapshot). */
#define TABLE_SLACK 16
static int read_tables(struct shmring *ring, struct ring_view *v)
{
	int n = shmring_attachments(ring, NULL, 0);
	if (n < 0)
		return n;
	size_t cap = (size_t)n + TABLE_SLACK;
	if (!(v->att = calloc(cap, sizeof *v->att)))
		return -ENOMEM;
	int got = shmring_attachments(ring, v->att, cap);
	if (got < 0)
		return got;
	v->natt = (size_t)got > cap ? (int)cap : got;
	if (!(v->info.delivery & SHMRING_BROADCAST))
		return 0;
	n = shmring_subscribers(ring, NULL, 0);
	if (n < 0)
		return n;
	cap = (size_t)n + TABLE_SLACK;
	v->sub = calloc(cap, sizeof *v->sub);
	v->sub_att = calloc(cap, sizeof *v->sub_att);
	if (!v->sub || !v->sub_att)
		return -ENOMEM;
	got = shmring_subscribers(ring, v->sub, cap);
	if (got < 0)
		return got;
	v->subscribers = got;
	v->nsub = (size_t)got > cap ? (int)cap : got;
	return 0;
}

void view_free(struct ring_view *v)
{
	free(v->att);
	free(v->sub);
	free(v->sub_att);
	v->att = NULL;
	v->sub = NULL;
	v->sub_att = NULL;
	v->natt = v->nsub = 0;
}

int view_load(const char *name, struct ring_view *v)
{
	view_free(v);
	memset(v, 0, sizeof *v);
	v->name = name;
	/* probe first: it fills uid, mode and size for whatever the file is */
	v->status = view_probe(name, &v->probe);
	if (v->status)
		return v->status;
	struct shmring *ring = NULL;
	struct open_args oa = { &ring, name };
	int rc = guarded(do_open, &oa);
	if (rc == 0) {
		rc = read_ring(ring, v);
		shmring_detach(ring);
	}
	if (rc) {
		v->status = rc;
		return rc;
	}
	/* a subscriber's liveness: its pid's consumer entry in the table just
	 * checked (shmring_subscribers reads the table, not the processes) */
	for (int s = 0; s < v->nsub; s++) {
		v->sub_att[s] = -1;
		for (int i = 0; i < v->natt && v->sub_att[s] < 0; i++)
			if (v->att[i].pid == v->sub[s].pid && (v->att[i].roles & SHMRING_CONSUMER))
				v->sub_att[s] = i;
	}
	/* live now: what the sweep left, checked during the listing itself */
	for (int i = 0; i < v->natt; i++) {
		const struct shmring_attachment *a = &v->att[i];
		if (a->state != SHMRING_ATTACH_LIVE && a->state != SHMRING_ATTACH_PENDING)
			continue;
		if (a->roles & SHMRING_PRODUCER)
			v->live_producers++;
		if (a->roles & SHMRING_CONSUMER)
			v->live_consumers++;
	}
	return 0;
}

const char *view_state(const struct ring_view *v)
{
	if (v->info.closed)
		return "closed";
	if (v->info.eof)
		return "eof";
	return "open";
}

/* The ring's kind: its delivery mode (broadcast, overwrite, redeliver), and
 * whether it is persistent. */
const char *view_kind(const struct ring_view *v)
{
	if (v->info.delivery & SHMRING_BROADCAST)
		return v->info.persistent ? "broadcast-persistent" : "broadcast";
	if (v->info.delivery & SHMRING_OVERWRITE)
		return v->info.persistent ? "overwrite-persistent" : "overwrite";
	if (v->info.delivery & SHMRING_REDELIVER)
		return v->info.persistent ? "redeliver-persistent" : "redeliver";
	return v->info.persistent ? "persistent" : "pipe";
}

const char *sub_policy(const struct shmring_subscriber *s)
{
	return (s->flags & SHMRING_SUB_LOSSY) ? "lossy" : "tethered";
}

const char *sub_liveness(const struct ring_view *v, int i)
{
	return v->sub_att[i] < 0 ? "gone" : attach_state_text(v->att[v->sub_att[i]].state);
}

const char *status_word(int status)
{
	switch (status) {
	case 0:        return "ring";
	case -EAGAIN:  return "being-made";
	case -EBADMSG:
	case -EFAULT:  return "corrupt";
	case -EACCES:  return "no-access";
	case -EXDEV:   return "other-pid-namespace";
	case -EPROTONOSUPPORT: return "other-version";
	case -ENOENT:  return "gone";
	default:       return "not-a-ring";
	}
}
