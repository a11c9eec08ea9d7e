/*
 * attach.c - who is attached: the shared attachment table, roles, the
 * census, reaping dead peers, and fork.
 *
 * A handle gets an entry in the ring's table when it first takes a role
 * (shmring_declare, or its first put or get).  The entry's id is the pid and
 * the process start time, so liveness survives pid reuse.  The census word
 * counts live producers and consumers; end of stream and broken pipe are read
 * off it with one load.
 *
 * Process-local state: a registry of this process's handles, guarded by one
 * mutex that pthread_atfork holds across fork().  In the child, every handle
 * loses its parent's entry; a handle with declared roles registers the child
 * at once, the others when they next take a role.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "handle.h"

#define REAP_INTERVAL_NS 50000000ull /* 50 ms between liveness sweeps */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_serial = 1;     /* under registry_lock */
_Atomic unsigned ring_fork_gen;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static struct shmring *registry;      /* this process's handles */
static pid_t self_pid;                /* whose identity self_id is */
static uint64_t self_id;

/* Parse /proc/<pid>/stat: state (field 3) and start time (field 22).  The
 * command name (field 2) may hold spaces and parentheses: skip to the last
 * ')'. */
static int proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	unsigned long long st = 0;
	/* after ')': state, then fields 4..21 (18 of them), then starttime */
	if (sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
	           state, &st) != 2)
		return -EIO;
	*start = st;
	return 0;
}

static uint64_t make_id(pid_t pid, uint64_t start)
{
	return (uint64_t)pid | (start << ATTACH_PID_BITS);
}

/* This process's id (slow path: a getpid and, once per process, /proc). */
static uint64_t my_id(void)
{
	pid_t pid = getpid();
	if (pid != self_pid) {
		char state;
		uint64_t start = 0;
		proc_stat(pid, &state, &start); /* without /proc, start 0: pid only */
		self_id = make_id(pid, start);
		self_pid = pid;
	}
	return self_id;
}

/* Is the process behind id alive?  Exited-but-unreaped (zombie) is dead. */
bool ring_id_alive(uint64_t id)
{
	pid_t pid = (pid_t)(id & ATTACH_PID_MASK);
	if (id == my_id())
		return true;
	char state;
	uint64_t start;
	int rc = proc_stat(pid, &state, &start);
	if ((rc == -ENOENT || rc == -ESRCH) && access("/proc/self/stat", R_OK) == 0)
		return false;
	if (rc) /* no /proc here: the pid alone (start times unknown) */
		return kill(pid, 0) == 0 || errno == EPERM;
	return state != 'Z' && state != 'X' && start == ((id & ATTACH_ID_MASK) >> ATTACH_PID_BITS);
}

static uint64_t census_delta(unsigned roles)
{
	return ((roles & SHMRING_PRODUCER) ? CENSUS_PRODUCER : 0) |
	       ((roles & SHMRING_CONSUMER) ? CENSUS_CONSUMER : 0);
}

static void census_add(struct ring_header *hdr, unsigned roles)
{
	uint64_t ever = ((roles & SHMRING_PRODUCER) ? CENSUS_EVER_PRODUCER : 0) |
	                ((roles & SHMRING_CONSUMER) ? CENSUS_EVER_CONSUMER : 0);
	/* seq_cst: a joining producer or consumer must be counted before its
	 * first put/get can be seen, and before anyone decides EOF/EPIPE. */
	/* the count before the ever bits: "ever, and none left" must never be
	 * seen while a first producer (consumer) is joining */
	atomic_fetch_add_explicit(&hdr->census, census_delta(roles), memory_order_seq_cst);
	atomic_fetch_or_explicit(&hdr->census, ever, memory_order_seq_cst);
}

static void census_sub(struct ring_header *hdr, unsigned roles)
{
	/* seq_cst (release at least): a leaving producer's puts happen before
	 * a consumer that reads the lower count and then looks at prod_head. */
	atomic_fetch_sub_explicit(&hdr->census, census_delta(roles), memory_order_seq_cst);
}

static void wake_everyone(struct shmring *r)
{
	ec_notify(r, &r->hdr->not_empty);
	ec_notify(r, &r->hdr->not_full);
}

/* --- the process-local registry, and fork ------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define PENDING_TIMEOUT_NS 1000000000ull /* a child converts its entry in us */

static int claim_entry(struct shmring *r, uint64_t id);

/* In the parent, before fork: claim the child's entry now, so that its
 * roles are counted before fork() returns; the parent may drop its own
 * roles at once (shmring_leave) without the count passing through zero. */
static void before_fork(void)
{
	pthread_mutex_lock(&registry_lock);
	for (struct shmring *r = registry; r; r = r->reg_next) {
		r->fork_slot = -1;
		if (!r->declared)
			continue;
		int parent_slot = r->attach_slot;
		pid_t parent_pid = r->attach_pid;
		if (claim_entry(r, my_id() | ATTACH_PENDING_TAG) != 0)
			continue;
		struct attach_entry *e = &r->hdr->attach[r->attach_slot];
		atomic_store_explicit(&e->since_ns, now_ns(), memory_order_relaxed);
		atomic_store_explicit(&e->roles, r->declared, memory_order_relaxed);
		census_add(r->hdr, r->declared);
		r->fork_slot = r->attach_slot;
		r->fork_id = my_id() | ATTACH_PENDING_TAG;
		r->attach_slot = parent_slot;
		r->attach_pid = parent_pid;
	}
}

static void after_fork_parent(void)
{
	/* The child converts fork_slot; if fork failed, the pending entry
	 * times out and is reaped. */
	pthread_mutex_unlock(&registry_lock);
}

static void after_fork_child(void)
{
	atomic_fetch_add_explicit(&ring_fork_gen, 1, memory_order_relaxed);
	uint64_t id = my_id();
	for (struct shmring *r = registry; r; r = r->reg_next) {
		r->attach_slot = -1;
		atomic_store_explicit(&r->roles, 0, memory_order_relaxed);
		if (r->fork_slot < 0)
			continue;
		struct attach_entry *e = &r->hdr->attach[r->fork_slot];
		/* CAS from the exact pending id: a reaper may have taken the
		 * stale entry meanwhile (REAPING, 0, or someone else's id now). */
		uint64_t parent_id = r->fork_id;
		if (atomic_compare_exchange_strong_explicit(&e->id, &parent_id, id,
		                                            memory_order_acq_rel,
		                                            memory_order_relaxed)) {
			r->attach_slot = r->fork_slot;
			r->attach_pid = (pid_t)(id & ATTACH_PID_MASK);
			atomic_store_explicit(&r->roles, r->declared, memory_order_relaxed);
		}
		r->fork_slot = -1;
	}
	pthread_mutex_unlock(&registry_lock);
	/* A handle whose pending entry was lost takes its roles again. */
	for (struct shmring *r = registry; r; r = r->reg_next)
		if (r->declared && r->attach_slot < 0)
			ring_take_role(r, r->declared);
}

static void registry_init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

void ring_registry_add(struct shmring *r)
{
	pthread_once(&registry_once, registry_init);
	r->attach_slot = -1;
	r->fork_slot = -1;
	pthread_mutex_lock(&registry_lock);
	r->serial = next_serial++;
	r->reg_next = registry;
	r->reg_prev = NULL;
	if (registry)
		registry->reg_prev = r;
	registry = r;
	pthread_mutex_unlock(&registry_lock);
}

/* Leave the table (roles end: wake peers so they see EOF/EPIPE) and the
 * registry.  Only the process that registered an entry removes it. */
void ring_registry_remove(struct shmring *r)
{
	pthread_mutex_lock(&registry_lock);
	if (r->attach_slot >= 0 && r->attach_pid == getpid()) {
		struct attach_entry *e = &r->hdr->attach[r->attach_slot];
		/* Spans still reserved or peeked die with the handle: finish them
		 * as a sweep would for a dead process. */
		if (atomic_load_explicit(&e->claim_busy, memory_order_relaxed))
			ring_recover_entry(r, r->attach_slot);
		unsigned roles = atomic_exchange_explicit(&e->roles, 0, memory_order_seq_cst);
		census_sub(r->hdr, roles);
		atomic_store_explicit(&e->id, 0, memory_order_release);
		r->attach_slot = -1;
		if (roles)
			wake_everyone(r);
	}
	if (r->reg_prev)
		r->reg_prev->reg_next = r->reg_next;
	else if (registry == r)
		registry = r->reg_next;
	if (r->reg_next)
		r->reg_next->reg_prev = r->reg_prev;
	pthread_mutex_unlock(&registry_lock);
}

bool ring_with_handle(uint64_t serial, void (*f)(struct shmring *r, void *arg), void *arg)
{
	bool found = false;
	pthread_mutex_lock(&registry_lock);
	for (struct shmring *r = registry; r; r = r->reg_next) {
		if (r->serial == serial) {
			f(r, arg);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return found;
}

/* --- entries and roles --------------------------------------------------- */

/* With registry_lock held. */
static int claim_entry(struct shmring *r, uint64_t id)
{
	for (int i = 0; i < SHMRING_MAX_ATTACH; i++) {
		struct attach_entry *e = &r->hdr->attach[i];
		uint64_t expect = 0;
		if (atomic_load_explicit(&e->id, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong_explicit(&e->id, &expect, id,
		                                            memory_order_acq_rel,
		                                            memory_order_relaxed)) {
			r->attach_slot = i;
			r->attach_pid = (pid_t)(id & ATTACH_PID_MASK);
			claim_reset_entry(r->hdr, i);
			return 0;
		}
	}
	ring_reap(r); /* a full table may hold the dead */
	for (int i = 0; i < SHMRING_MAX_ATTACH; i++) {
		struct attach_entry *e = &r->hdr->attach[i];
		uint64_t expect = 0;
		if (atomic_compare_exchange_strong_explicit(&e->id, &expect, id,
		                                            memory_order_acq_rel,
		                                            memory_order_relaxed)) {
			r->attach_slot = i;
			r->attach_pid = (pid_t)(id & ATTACH_PID_MASK);
			claim_reset_entry(r->hdr, i);
			return 0;
		}
	}
	return -EUSERS;
}

int ring_take_role(struct shmring *r, unsigned roles)
{
	pthread_mutex_lock(&registry_lock);
	int rc = 0;
	unsigned have = atomic_load_explicit(&r->roles, memory_order_relaxed);
	if ((have & roles) != roles) {
		if (r->attach_slot < 0)
			rc = claim_entry(r, my_id());
		if (rc == 0) {
			struct attach_entry *e = &r->hdr->attach[r->attach_slot];
			unsigned old = atomic_fetch_or_explicit(&e->roles, roles, memory_order_seq_cst);
			census_add(r->hdr, roles & ~old);
			/* release: pairs with ring_need_role's acquire */
			atomic_store_explicit(&r->roles, have | roles, memory_order_release);
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

int shmring_declare(struct shmring *ring, unsigned roles)
{
	if (!ring || !roles || (roles & ~(SHMRING_PRODUCER | SHMRING_CONSUMER)))
		return -EINVAL;
	pthread_mutex_lock(&registry_lock);
	ring->declared |= roles;
	pthread_mutex_unlock(&registry_lock);
	return ring_take_role(ring, roles);
}

int shmring_leave(struct shmring *ring, unsigned roles)
{
	if (!ring || !roles || (roles & ~(SHMRING_PRODUCER | SHMRING_CONSUMER)))
		return -EINVAL;
	pthread_mutex_lock(&registry_lock);
	ring->declared &= ~roles;
	unsigned dropped = 0;
	if (ring->attach_slot >= 0 && ring->attach_pid == getpid()) {
		struct attach_entry *e = &ring->hdr->attach[ring->attach_slot];
		dropped = atomic_fetch_and_explicit(&e->roles, ~roles, memory_order_seq_cst) & roles;
		census_sub(ring->hdr, dropped);
	}
	atomic_fetch_and_explicit(&ring->roles, ~roles, memory_order_relaxed);
	pthread_mutex_unlock(&registry_lock);
	if (dropped)
		wake_everyone(ring);
	return 0;
}

/* --- reaping the dead ---------------------------------------------------- */

int ring_reap(struct shmring *r)
{
	struct ring_header *hdr = r->hdr;
	int reaped = 0;
	for (int i = 0; i < SHMRING_MAX_ATTACH; i++) {
		struct attach_entry *e = &hdr->attach[i];
		uint64_t id = atomic_load_explicit(&e->id, memory_order_acquire);
		if (id == 0)
			continue;
		if (id & ATTACH_REAPING_TAG) {
			/* Being reaped.  If the reaper died too (or a recovery was
			 * left to be retried: no reaper), take over: recovery is
			 * safe to redo. */
			if ((id & ATTACH_ID_MASK) && ring_id_alive(id & ATTACH_ID_MASK))
				continue;
		} else if (id & ATTACH_PENDING_TAG) {
			/* a child that never took its entry over: fork failed, or
			 * it died at once */
			if (now_ns() - atomic_load_explicit(&e->since_ns, memory_order_relaxed) <
			    PENDING_TIMEOUT_NS)
				continue;
		} else if (ring_id_alive(id)) {
			continue;
		}
		/* The CAS makes one reaper, known by its id, the owner. */
		if (!atomic_compare_exchange_strong_explicit(&e->id, &id, my_id() | ATTACH_REAPING_TAG,
		                                             memory_order_acq_rel,
		                                             memory_order_relaxed))
			continue;
		/* Finish what it left half done, then let it go.  If a claim of
		 * a live process still covers part of it, a later sweep retries:
		 * leave the entry marked with no reaper. */
		if (!ring_recover_entry(r, i)) {
			atomic_store_explicit(&e->id, ATTACH_REAPING_TAG, memory_order_release);
			continue;
		}
		/* exchange: the roles are taken off the census exactly once */
		unsigned roles = atomic_exchange_explicit(&e->roles, 0, memory_order_acq_rel);
		census_sub(hdr, roles);
		atomic_store_explicit(&e->id, 0, memory_order_release);
		reaped++;
	}
	if (reaped)
		wake_everyone(r);
	return reaped;
}

/* Sweep at most every REAP_INTERVAL_NS per ring, whoever calls. */
void ring_maybe_reap(struct shmring *r)
{
	uint64_t now = now_ns();
	uint64_t last = atomic_load_explicit(&r->hdr->reap_ns, memory_order_relaxed);
	if (now - last < REAP_INTERVAL_NS && last <= now)
		return;
	if (atomic_compare_exchange_strong_explicit(&r->hdr->reap_ns, &last, now,
	                                            memory_order_relaxed, memory_order_relaxed))
		ring_reap(r);
}
