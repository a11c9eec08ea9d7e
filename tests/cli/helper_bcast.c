/*
 * helper_bcast.c - a process for tests/cli/test_cli.py that does what the
 * shmring(1) tool cannot: make a broadcast ring, subscribe, and put at
 * timeout 0 counting refusals.  (The Python binding has no subscribe.)
 *
 *   helper_bcast create NAME CAPACITY   make a persistent broadcast ring, detach
 *   helper_bcast put NAME COUNT LEN     put COUNT records of LEN bytes, timeout 0;
 *                                       prints "put P refused R" (R: -EAGAIN)
 *   helper_bcast sub NAME lossy|tethered
 *       subscribe, print "ready", then for each stdin line "drain": get
 *       (timeout 0) until -EAGAIN, print "got G overflow O lost L" (G: records
 *       received by this drain, O: -EOVERFLOW seen, L: shmring_lost());
 *       at end of stdin detach and exit 0.
 *   helper_bcast peek NAME
 *       peek one record (waiting for it), print "peeked LEN", then hold it
 *       until killed (a consumer that dies holding a record)
 *   helper_bcast many NAME N MAX_ATTACH
 *       make a ring with max_attach MAX_ATTACH (not broadcast), open it N
 *       times as a consumer, print "ready", hold them until stdin ends
 *   helper_bcast hold NAME
 *       open the ring and take no role (no attachment entry), print "held",
 *       keep the handle until stdin ends
 * Exit: 0 ok, 2 usage, 1 a library error (printed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmring.h"
#include "shmring_broadcast.h"
#include "shmring_zc.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "helper_bcast: %s: %s\n", what, shmring_strerror(rc));
	return 1;
}

static int create(const char *name, size_t capacity)
{
	struct shmring_config cfg = { .capacity = capacity, .max_record = 256, .mode = 0600,
	                              .flags = SHMRING_BROADCAST | SHMRING_PERSISTENT };
	struct shmring *r;
	int rc = shmring_create(&r, name, &cfg);
	if (rc)
		return fail("create", rc);
	shmring_detach(r);
	return 0;
}

static int put(const char *name, unsigned long count, size_t len)
{
	struct shmring *r;
	int rc = shmring_open(&r, name);
	if (rc)
		return fail("open", rc);
	char buf[4096];
	if (len > sizeof buf)
		len = sizeof buf;
	unsigned long ok = 0, refused = 0;
	for (unsigned long i = 0; i < count; i++) {
		memset(buf, 'a' + (int)(i % 26), len);
		rc = shmring_put(r, buf, len, 0);
		if (rc == 0)
			ok++;
		else if (rc == -EAGAIN)
			refused++;
		else {
			shmring_detach(r);
			return fail("put", rc);
		}
	}
	printf("put %lu refused %lu\n", ok, refused);
	shmring_detach(r);
	return 0;
}

static int sub(const char *name, unsigned flags)
{
	struct shmring *r;
	int rc = shmring_open(&r, name);
	if (rc)
		return fail("open", rc);
	if ((rc = shmring_subscribe(r, flags)) != 0) {
		shmring_detach(r);
		return fail("subscribe", rc);
	}
	printf("ready\n");
	fflush(stdout);
	char line[64], buf[4096];
	while (fgets(line, sizeof line, stdin)) {
		unsigned long got = 0, overflow = 0;
		for (;;) {
			rc = shmring_get(r, buf, sizeof buf, 0);
			if (rc >= 0)
				got++;
			else if (rc == -EOVERFLOW)
				overflow++;
			else
				break;
		}
		if (rc != -EAGAIN) {
			shmring_detach(r);
			return fail("get", rc);
		}
		printf("got %lu overflow %lu lost %llu\n", got, overflow,
		       (unsigned long long)shmring_lost(r));
		fflush(stdout);
	}
	shmring_detach(r);
	return 0;
}

static int peek_and_hold(const char *name)
{
	struct shmring *r;
	int rc = shmring_open(&r, name);
	if (rc)
		return fail("open", rc);
	struct shmring_span sp;
	ssize_t n = shmring_peek(r, &sp, -1);
	if (n < 0)
		return fail("peek", (int)n);
	printf("peeked %zd\n", n);
	fflush(stdout);
	for (;;)
		pause();
}

static int many(const char *name, unsigned long n, unsigned long max_attach)
{
	struct shmring_config cfg = { .capacity = 4096, .max_attach = max_attach, .mode = 0600 };
	struct shmring *r;
	int rc = shmring_create(&r, name, &cfg);
	if (rc)
		return fail("create", rc);
	for (unsigned long i = 0; i < n; i++) {
		struct shmring *h;
		if ((rc = shmring_open(&h, name)) || (rc = shmring_declare(h, SHMRING_CONSUMER)))
			return fail("open and declare", rc);
	}
	printf("ready\n");
	fflush(stdout);
	char line[16];
	while (fgets(line, sizeof line, stdin))
		;
	return 0; /* (exit detaches them all) */
}

static int hold(const char *name)
{
	struct shmring *r;
	int rc = shmring_open(&r, name);
	if (rc)
		return fail("open", rc);
	printf("held\n");
	fflush(stdout);
	char line[16];
	while (fgets(line, sizeof line, stdin))
		;
	shmring_detach(r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "create"))
		return create(argv[2], strtoul(argv[3], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "put"))
		return put(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "sub") &&
	    (!strcmp(argv[3], "lossy") || !strcmp(argv[3], "tethered")))
		return sub(argv[2], !strcmp(argv[3], "lossy") ? SHMRING_SUB_LOSSY : 0);
	if (argc == 3 && !strcmp(argv[1], "peek"))
		return peek_and_hold(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return hold(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "many"))
		return many(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
	fputs("usage: helper_bcast create NAME CAPACITY | put NAME COUNT LEN | "
	      "sub NAME lossy|tethered | peek NAME | many NAME N MAX_ATTACH | hold NAME\n", stderr);
	return 2;
}
