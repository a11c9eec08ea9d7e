/* procs.c - stress_procs: the parent's children: spawn (declare, fork, leave), kill all, the alarm (stress_procs.h). */
#include "../stress_procs.h"

/* ---- the parent: processes ------------------------------------------------------ */

struct proc slots[2][MAX_PROCS];	/* per kind, per slot: the live incarnation */
uint32_t next_inc[2];
int alive[2];			/* live children per kind */
pid_t parent_pid;
bool cinc_dead[MAX_INC];		/* consumer incarnation gone */

static uint8_t next_tag = 0;
uint8_t victim_tag = 0;		/* the tag of a consumer about to be killed */

/* A delivery tag no live consumer has (round robin over 1..255). */
static uint8_t pick_tag(void)
{
	for (;;) {
		next_tag = (uint8_t)(next_tag % 255 + 1);
		bool used = next_tag == victim_tag;
		for (int s = 0; s < opt.consumers; s++)
			if (slots[CONS][s].pid && sh->cinc[slots[CONS][s].inc].tag == next_tag)
				used = true;
		if (!used)
			return next_tag;
	}
}

/* Fork a child of that kind into slot s (declare, fork, leave). */
int spawn(enum kind k, int s)
{
	if (next_inc[k] >= MAX_INC)
		return -ENOSPC;
	uint32_t inc = next_inc[k]++;
	unsigned role = k == PROD ? SHMRING_PRODUCER : SHMRING_CONSUMER;
	if (k == PROD)
		sh->pinc[inc].slot = (uint32_t)s;
	else {
		sh->cinc[inc].slot = (uint32_t)s;
		sh->cinc[inc].tag = pick_tag();
	}
	int rc = shmring_declare(ring, role);
	if (rc) {
		fprintf(stderr, NAME ": shmring_declare: %s\n", shmring_strerror(rc));
		return rc;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent_pid)
			_exit(3);
		signal(SIGALRM, SIG_DFL);
		alarm(0);
		char buf[32];
		snprintf(buf, sizeof buf, "%s %u", kind_name[k], inc);
		who = buf;
		if (k == PROD)
			producer_main(inc);
		else
			consumer_main(inc);
		_exit(0);
	}
	int err = errno;
	shmring_leave(ring, role);
	if (pid < 0) {
		fprintf(stderr, NAME ": fork: %s\n", strerror(err));
		return -err;
	}
	if (k == PROD)
		sh->pinc[inc].pid = pid;
	else
		sh->cinc[inc].pid = pid;
	slots[k][s] = (struct proc){ pid, inc };
	alive[k]++;
	return 0;
}

void kill_all(void)
{
	for (int k = 0; k < 2; k++)
		for (int s = 0; s < MAX_PROCS; s++)
			if (slots[k][s].pid > 0)
				kill(slots[k][s].pid, SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
}

void on_alarm(int sig)
{
	static const char msg[] = NAME ": FAIL watchdog: the run did not finish (hang?)\n";
	(void)sig;
	for (int k = 0; k < 2; k++)
		for (int s = 0; s < MAX_PROCS; s++)
			if (slots[k][s].pid > 0)
				kill(slots[k][s].pid, SIGKILL);
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(3);
	_exit(3);
}
