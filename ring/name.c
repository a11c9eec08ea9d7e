/*
 * name.c - validating a ring name and making its shm_open path.
 *
 * Accepted: 1..SHMRING_NAME_MAX bytes of [A-Za-z0-9._-], with one optional
 * leading '/'; not "." or "..".  Nothing else reaches shm_open, so a name can
 * never step outside /dev/shm.
 */
#include <errno.h>
#include <string.h>

#include "handle.h"

int shmring__shm_name(const char *name, char out[SHMRING_NAME_MAX + 2])
{
	if (!name)
		return -EINVAL;
	if (name[0] == '/')
		name++;
	size_t len = strnlen(name, SHMRING_NAME_MAX + 1);
	if (len == 0)
		return -EINVAL;
	if (len > SHMRING_NAME_MAX)
		return -ENAMETOOLONG;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return -EINVAL;
	}
	out[0] = '/';
	memcpy(out + 1, name, len + 1);
	return 0;
}
