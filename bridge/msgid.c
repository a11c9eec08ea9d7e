/*
 * msgid.c - a ring file's identity, and the Nats-Msg-Id of a record.
 *
 * A record is named by (ring file, position).  The position is the ring's
 * 64-bit slot counter (shmring_span_position): it only grows, so no two
 * records of one ring file share it, and a redelivered record keeps it.  The
 * ring file is named by a hash of this boot's random boot_id, the file's
 * device and inode, and the ring's name: stable for as long as the file
 * exists (every bridge restart computes the same value), and different for
 * a ring made again under the same name (tmpfs gives a new file a new inode
 * number; its positions start at 0 again, so without this they would repeat
 * the old ring's ids inside the stream's duplicate window and be dropped).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge.h"

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

int ring_identity(struct shmring *ring, const char *name, uint64_t *id)
{
	struct stat sb;
	if (fstat(shmring_fd(ring), &sb) < 0)
		return -errno;
	char boot[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (!f || !fgets(boot, sizeof boot, f)) {
		if (f)
			fclose(f);
		return -EIO;
	}
	fclose(f);
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	h = fnv1a(h, boot, strlen(boot));
	uint64_t dev = (uint64_t)sb.st_dev, ino = (uint64_t)sb.st_ino;
	h = fnv1a(h, &dev, sizeof dev);
	h = fnv1a(h, &ino, sizeof ino);
	h = fnv1a(h, name, strlen(name));
	*id = h;
	return 0;
}

void msgid_format(char out[MSGID_MAX], uint64_t ring_id, uint64_t pos)
{
	snprintf(out, MSGID_MAX, "shmring-%016" PRIx64 "-%" PRIu64, ring_id, pos);
}

int msgid_parse(const char *s, uint64_t *ring_id, uint64_t *pos)
{
	if (!s || strncmp(s, "shmring-", 8) || strlen(s) < 8 + 16 + 2 || s[24] != '-')
		return -1;
	char hex[17];
	memcpy(hex, s + 8, 16);
	hex[16] = 0;
	char *end;
	errno = 0;
	unsigned long long id = strtoull(hex, &end, 16);
	if (errno || *end)
		return -1;
	unsigned long long p = strtoull(s + 25, &end, 10);
	if (errno || *end || end == s + 25)
		return -1;
	*ring_id = id;
	*pos = p;
	return 0;
}
