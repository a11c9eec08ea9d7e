/*
 * rm.c - `shmring rm NAME...` and `shmring rm --stale [--force]`.
 *
 * Only files that are rings (or corrupt rings: the magic matched) are ever
 * removed.  --stale removes a ring only if, swept now, no attachment is left
 * alive, no process holds it open, (without --force) no record is waiting,
 * and it is at least --min-age seconds old (5: a creator of an older library,
 * which holds no lock, that has not yet taken a role).  The last check and
 * the unlink are one step for every process that opens the ring
 * (shmring_unlink_stale): it either keeps the ring or finds the name gone.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static int remove_one(const char *name, bool verbose)
{
	struct shmring_probe p;
	int st = view_probe(name, &p);
	/* a corrupt ring, or one made in another PID namespace or by a
	 * library of another layout version: still a ring, removed when named
	 * (rm --stale cannot judge the last two: kept).  One
	 * this user may not write (its own, mode 0444): shmring_unlink reads
	 * the magic read-only and removes it if it is a ring, as rm(1) would;
	 * it said "permission denied" (a review found it, 2026-12-06). */
	if (st && st != -EBADMSG && st != -EXDEV && st != -EACCES && st != -EPROTONOSUPPORT)
		return ring_error(name, st);
	int rc = shmring_unlink(name);
	if (rc)
		return ring_error(name, rc);
	if (verbose)
		printf("removed %s\n", name);
	return 0;
}

/* Seconds since the file's inode last changed (shmring_create's ftruncate
 * sets it; traffic through the mapping does not). */
static double file_age(const char *name)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, SHM_DIR "/%s", name);
	if (lstat(path, &st) < 0)
		return 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (double)(now.tv_sec - st.st_ctim.tv_sec) +
	       (double)(now.tv_nsec - st.st_ctim.tv_nsec) / 1e9;
}

/* Why a ring must stay, or NULL if --stale may remove it. */
static const char *keep_reason(const struct ring_view *v, bool force, double min_age,
                               char *buf, size_t n)
{
	double age = file_age(v->name);
	if (age < min_age) {
		/* its creator may not have taken a role yet */
		snprintf(buf, n, "made %.1f s ago (--min-age %g)", age, min_age);
		return buf;
	}
	for (int i = 0; i < v->natt; i++) {
		int s = v->att[i].state;
		if (s == SHMRING_ATTACH_LIVE || s == SHMRING_ATTACH_PENDING ||
		    s == SHMRING_ATTACH_REAPING) {
			snprintf(buf, n, "process %d is attached (%s)", (int)v->att[i].pid,
			         attach_state_text(s));
			return buf;
		}
	}
	if (v->info.records && !force) {
		snprintf(buf, n, "%zu records waiting (--force drops them)", v->info.records);
		return buf;
	}
	return NULL;
}

static int remove_stale(bool force, double min_age, bool verbose)
{
	char **names;
	size_t n;
	if (list_shm_names(&names, &n))
		return 0;
	int rc = 0;
	struct ring_view *v = calloc(1, sizeof *v);
	if (!v) {
		free_names(names, n);
		warnx_("out of memory");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		int st = view_load(names[i], v);
		if (st == -EXDEV && verbose)
			printf("kept %s: made in another PID namespace (its processes cannot be "
			       "checked from here; rm NAME removes it)\n", names[i]);
		if (st == -EPROTONOSUPPORT && verbose)
			printf("kept %s: made by a library of another layout version (its processes "
			       "cannot be checked by this one; rm NAME removes it)\n", names[i]);
		if (st)
			continue; /* not a ring (or not ours to look at): never removed */
		char why[128];
		const char *reason = keep_reason(v, force, min_age, why, sizeof why);
		if (reason) {
			if (verbose)
				printf("kept %s: %s\n", names[i], reason);
			continue;
		}
		/* the check again, and the unlink, as one step for every
		 * process that opens the ring meanwhile (shmring_unlink_stale:
		 * a handle open is the in-use lock, even with no role taken) */
		int err = view_unlink_stale(names[i], force ? SHMRING_UNLINK_FORCE : 0);
		if (err == -EBUSY || err == -ENOTEMPTY) {
			if (verbose)
				printf("kept %s: %s\n", names[i],
				       err == -EBUSY ? "in use (a process holds it open)"
				                     : "records waiting (--force drops them)");
		} else if (err == -EACCES || err == -EPERM) {
			/* another user's ring this user may open but not unlink
			 * (/dev/shm is sticky): not ours to remove, as the rings we
			 * may not open (shmring(1)); an error here made any user's
			 * shared stale ring fail every other user's cleanup */
			if (verbose)
				printf("kept %s: another user's (may not remove it)\n", names[i]);
		} else if (err == -ENOENT) {
			if (verbose) /* removed, or made again, by someone else */
				printf("kept %s: changed meanwhile\n", names[i]);
		} else if (err) {
			rc = ring_error(names[i], err);
		} else if (verbose) {
			printf("removed %s\n", names[i]);
		}
	}
	view_free(v);
	free(v);
	free_names(names, n);
	return rc;
}

int cmd_rm(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stale", no_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "min-age", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool stale = false, force = false, verbose = false;
	double min_age = 5;
	int c;
	while ((c = getopt_long(argc, argv, "sfvh", opts, NULL)) != -1) {
		switch (c) {
		case 's': stale = true; break;
		case 'f': force = true; break;
		case 'v': verbose = true; break;
		case 'a':
			if (strcmp(optarg, "0") && parse_seconds(optarg, &min_age))
				return usage_error("rm", "--min-age wants seconds, not '%s'", optarg);
			if (!strcmp(optarg, "0"))
				min_age = 0;
			break;
		case 'h':
			fputs("usage: shmring rm [-v] NAME...\n"
			      "       shmring rm --stale [--force] [--min-age SECONDS] [-v]\n", stdout);
			return 0;
		default:  return usage_error("rm", "bad option");
		}
	}
	if (stale) {
		if (optind < argc)
			return usage_error("rm", "--stale takes no names");
		return remove_stale(force, min_age, verbose);
	}
	if (force)
		return usage_error("rm", "--force goes with --stale");
	if (optind == argc)
		return usage_error("rm", "wants ring names, or --stale");
	int rc = 0;
	for (int i = optind; i < argc; i++)
		if (remove_one(argv[i], verbose))
			rc = 1;
	fflush(stdout);
	return rc;
}
