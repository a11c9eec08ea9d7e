/*
 * run.c - start the parties of one run together and collect what they did.
 *
 * Cross-process transports: the parent makes the channels (ops->setup),
 * forks one process per party, and each party pins itself, prepares
 * (ops->prep: opens its endpoints, declares its roles), arrives at a ready
 * latch and waits at a start gate (shmring_latch from <shmring_latch.h>, in
 * shared memory).  The parent opens the gate once every party has arrived, so
 * no party starts before the slowest one is ready, and reaps each child with
 * wait4() for its user+sys CPU time.
 *
 * In-process transports (wfcqueue): the parent forks one child, which makes
 * the channels and starts one thread per party; the threads use the same
 * latch and gate, opened by the parent.  The child's rusage covers every
 * thread.
 *
 * A run that has not finished after run->timeout_ns is killed (SIGKILL to its
 * own children) and reported as failed.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int g_ncpus = 1;
int g_cpus[256];

struct party_out *party_out(struct party *p)
{
	return &p->run->sh->out[p->index];
}

void party_fail(struct party *p, const char *fmt, ...)
{
	struct party_out *o = party_out(p);
	va_list ap;

	if (o->failed)
		return;
	o->failed = 1;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof o->msg, fmt, ap);
	va_end(ap);
}

void run_default_pins(struct run *r, int nparties)
{
	for (int i = 0; i < nparties; i++)
		r->pin[i] = g_opt.pin && nparties <= g_ncpus && g_ncpus >= 2 ? g_cpus[i] : -1;
}

static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

/* The body of a party, in its process or thread. */
static int party_body(struct run *r, int i)
{
	struct party p = { .run = r, .index = i, .role = r->role[i], .cpu = r->pin[i] };
	struct party_out *o = &r->sh->out[i];
	int rc;

	pin_to_cpu(p.cpu);
	rc = r->ops->prep ? r->ops->prep(&p) : 0;
	if (rc && !o->failed)
		party_fail(&p, "prep failed: %d", rc);
	/* What the run's CPU figure leaves out: start-up and prep (a 4 MiB
	 * ring's shmring_prefault is 15-18 ms of CPU a process here, as much
	 * as the whole 1x1 run's traffic). */
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) == 0)
		o->cpu_prep_ns = rusage_cpu_ns(&ru);
	shmring_latch_arrive(&r->sh->ready);
	shmring_gate_wait(&r->sh->gate, -1);
	if (!o->failed) {
		rc = r->ops->main(&p);
		if (rc && !o->failed)
			party_fail(&p, "failed: %d", rc);
	}
	if (r->ops->fini)
		r->ops->fini(&p);
	return o->failed ? 1 : 0;
}

struct thread_arg {
	struct run *r;
	int i;
};

static void *thread_main(void *arg)
{
	struct thread_arg *a = arg;
	party_body(a->r, a->i);
	return NULL;
}

/* The one child of an in-process run. */
static int inproc_child(struct run *r)
{
	pthread_t th[MAX_PARTIES];
	struct thread_arg args[MAX_PARTIES];
	int rc = r->ops->setup ? r->ops->setup(r) : 0;

	if (rc) {
		/* Let the parent see it: fail every party and release the latch. */
		for (int i = 0; i < r->nparties; i++) {
			struct party_out *o = &r->sh->out[i];
			o->failed = rc == 1 ? 2 : 1;
			snprintf(o->msg, sizeof o->msg, "%.199s", r->why);
			shmring_latch_arrive(&r->sh->ready);
		}
		return rc == 1 ? 3 : 1;
	}
	for (int i = 0; i < r->nparties; i++) {
		args[i] = (struct thread_arg){ r, i };
		if (pthread_create(&th[i], NULL, thread_main, &args[i]) != 0) {
			fprintf(stderr, "shmring-bench: pthread_create failed\n");
			_exit(2);
		}
	}
	for (int i = 0; i < r->nparties; i++)
		pthread_join(th[i], NULL);
	if (r->ops->teardown)
		r->ops->teardown(r);
	for (int i = 0; i < r->nparties; i++)
		if (r->sh->out[i].failed)
			return 1;
	return 0;
}

int run_parties(struct run *r)
{
	pid_t pid[MAX_PARTIES];
	int nproc = r->inproc ? 1 : r->nparties;
	int rc;

	r->na = r->failed = 0;
	r->why[0] = 0;
	r->cpu_ns = r->wall_ns = 0;
	static struct run_shared *sh;
	if (!sh)
		sh = shared_alloc(sizeof *sh);	/* one run at a time: reused */
	r->sh = sh;
	memset(r->sh, 0, sizeof *r->sh);
	atomic_store(&r->sh->producers_left, r->producers);
	shmring_latch_init(&r->sh->consumers_left, r->nparties - r->producers);
	shmring_latch_init(&r->sh->ready, r->nparties);
	shmring_gate_init(&r->sh->gate);

	if (!r->inproc && r->ops->setup) {
		rc = r->ops->setup(r);
		if (rc) {
			if (rc == 1)
				r->na = 1;
			else
				r->failed = 1;
			return -1;
		}
	}

	fflush(NULL);	/* children leave with _exit: nothing printed twice */
	for (int i = 0; i < nproc; i++) {
		pid[i] = fork();
		if (pid[i] < 0) {
			snprintf(r->why, sizeof r->why, "fork: %s", strerror(errno));
			r->failed = 1;
			for (int k = 0; k < i; k++)
				kill(pid[k], SIGKILL);
			for (int k = 0; k < i; k++)
				waitpid(pid[k], NULL, 0);
			nproc = 0;
			break;
		}
		if (pid[i] == 0) {
			signal(SIGALRM, SIG_DFL);
			_exit(r->inproc ? inproc_child(r) : party_body(r, i));
		}
	}
	if (nproc && !r->failed) {
		/* Every party ready (or failed in prep), then go. */
		struct sigaction sa = { .sa_handler = on_alarm }, old;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, &old);
		alarm_fired = 0;
		unsigned secs = (unsigned)(r->timeout_ns / 1000000000) + 1;
		alarm(secs);
		while (shmring_latch_wait(&r->sh->ready, 100000000) == -ETIMEDOUT) {
			if (alarm_fired)
				break;
			/* a child that died before arriving never will */
			int st;
			for (int i = 0; i < nproc; i++) {
				if (pid[i] > 0 && waitpid(pid[i], &st, WNOHANG) == pid[i]) {
					pid[i] = -pid[i];
					alarm_fired = 1;
				}
			}
		}
		if (alarm_fired) {
			for (int k = 0; k < nproc; k++)
				if (pid[k] > 0)
					kill(pid[k], SIGKILL);
			snprintf(r->why, sizeof r->why, "a party died or hung before the start");
			r->failed = 1;
		}
		r->t_gate = now_ns();
		shmring_gate_open(&r->sh->gate);

		int64_t t_last = r->t_gate;
		for (int i = 0; i < nproc; i++) {
			struct rusage ru;
			int st = 0;
			if (pid[i] <= 0)
				continue;
			for (;;) {
				pid_t w = wait4(pid[i], &st, 0, &ru);
				if (w == pid[i])
					break;
				if (w < 0 && errno == EINTR && alarm_fired) {
					for (int k = 0; k < nproc; k++)
						if (pid[k] > 0)
							kill(pid[k], SIGKILL);
					snprintf(r->why, sizeof r->why,
						 "timed out after %u s (killed)", secs);
					r->failed = 1;
					continue;
				}
				if (w < 0 && errno != EINTR) {
					st = -1;
					break;
				}
			}
			t_last = now_ns();
			if (st == -1)
				continue;
			r->cpu_ns += rusage_cpu_ns(&ru);
			/* less the party's CPU before the gate (an in-process
			 * run's one child: all its threads') */
			int first = r->inproc ? 0 : i, end = r->inproc ? r->nparties : i + 1;
			for (int k = first; k < end; k++)
				r->cpu_ns -= r->sh->out[k].cpu_prep_ns;
			if (!r->inproc)
				r->sh->out[i].ru = ru;
			if (r->inproc && WIFEXITED(st) && WEXITSTATUS(st) == 3) {
				r->na = 1;	/* setup said: not applicable */
			} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				r->failed = 1;
				if (!r->why[0] && WIFSIGNALED(st))
					snprintf(r->why, sizeof r->why, "party %d killed by signal %d",
						 i, WTERMSIG(st));
			}
		}
		alarm(0);
		sigaction(SIGALRM, &old, NULL);
		r->wall_ns = t_last - r->t_gate;
	}
	for (int i = 0; i < r->nparties && !r->na; i++) {
		struct party_out *o = &r->sh->out[i];
		if (o->failed) {
			r->failed = 1;
			if (!r->why[0])
				snprintf(r->why, sizeof r->why, "party %d: %s", i, o->msg);
		}
	}
	if (r->na && r->inproc)
		snprintf(r->why, sizeof r->why, "%s", r->sh->out[0].msg);
	if (!r->inproc && r->ops->teardown)
		r->ops->teardown(r);
	return r->failed || r->na ? -1 : 0;
}
