/*
 * inuse.c - the in-use lock of a named ring's file (inuse.h says what it
 * is for and who takes it).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inuse.h"

void shmring__inuse_hold(int fd)
{
	/* Never a blocking flock: a remover stopped while it holds the
	 * exclusive lock would hang us without a bound. */
	for (int tries = 0; tries < 1000; tries++) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0 || (errno != EWOULDBLOCK && errno != EINTR))
			return;
		usleep(1000);
	}
}

bool shmring__name_leads_to(const char *path, int fd)
{
	char full[sizeof SHM_DIR + SHMRING_NAME_MAX + 2];
	struct stat byname, mine;
	snprintf(full, sizeof full, "%s%s", SHM_DIR, path);
	return lstat(full, &byname) == 0 && fstat(fd, &mine) == 0 &&
	       byname.st_dev == mine.st_dev && byname.st_ino == mine.st_ino;
}
