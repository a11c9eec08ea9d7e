/*
 * liveness.c - who a process is, and whether it still runs.
 *
 * An attachment's id is the pid and the process start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot), so liveness survives pid reuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "liveness.h"

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

/* Our identity needs our start time: without it, every other process would
 * take our entry for a dead one (start time 0 matches no live process) and
 * reap it while we run.  So a failed read (the fd table full, /proc not
 * mounted) is an error for the caller, never an id with start time 0, and
 * the next call tries again.  Cached per process (a fork child has its own
 * pid, so it reads its own). */
int shmring__self_id(uint64_t *id)
{
	pid_t pid = getpid();
	if (pid != self_pid) {
		char state;
		uint64_t start = 0;
		int rc = proc_stat(pid, &state, &start);
		if (rc == 0 && start == 0)
			rc = -EIO;
		if (rc)
			return rc;
		self_id = make_id(pid, start);
		self_pid = pid;
	}
	*id = self_id;
	return 0;
}

/* The PID namespace this process lives in: the inode of /proc/self/ns/pid
 * (0 if unknown: no /proc, or too old a kernel). */
uint64_t shmring__pid_ns(void)
{
	struct stat st;
	return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

bool shmring__id_alive(uint64_t id)
{
	pid_t pid = (pid_t)(id & ATTACH_PID_MASK);
	uint64_t self;
	if (shmring__self_id(&self) == 0 && id == self)
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
