/*
 * inpos.c - the in direction's committed position, beside the ring.
 *
 * A one-page file in /dev/shm, "shmring-nats-in.<ring>.<durable>", mapped
 * shared: the stream sequence of the last message put into the ring
 * (committed) and of the one being put (pending).  It lives on the same
 * tmpfs as the ring, so it survives the bridge (SIGKILL included: the page
 * is the file's) and goes with the ring at reboot.  It names the ring file
 * it belongs to (ring identity, msgid.c) and the stream: a file left by
 * another ring of the same name, or for another stream, is started afresh.
 *
 * The put and the store of committed are two steps; a SIGKILL between them
 * leaves pending = committed + 1 with no way to tell whether that put
 * happened.  The bridge then puts it again (at least once, never lost):
 * inpos_committed reports it so that the bridge can say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bridge.h"

#define INPOS_MAGIC UINT64_C(0x31534f504e49524e) /* "NRINPOS1" */

struct inpos_file {
	uint64_t         magic;
	uint64_t         ring_id;
	char             stream[128];
	char             durable[128];
	_Atomic uint64_t committed;
	_Atomic uint64_t pending;
	_Atomic int64_t  stream_created;  /* ns since the epoch; 0: not yet known */
};

struct inpos {
	struct inpos_file *f;
};

int inpos_open(struct inpos **out, uint64_t ring_id, const char *ring,
               const char *stream, const char *durable)
{
	char path[512];
	snprintf(path, sizeof path, "/dev/shm/shmring-nats-in.%s.%s",
	         ring[0] == '/' ? ring + 1 : ring, durable);
	if (strlen(stream) >= 128 || strlen(durable) >= 128 || strchr(durable, '/'))
		return -EINVAL;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, 4096) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	struct inpos_file *f = m;
	if (f->magic != INPOS_MAGIC || f->ring_id != ring_id || strcmp(f->stream, stream) ||
	    strcmp(f->durable, durable)) {
		memset(f, 0, sizeof *f);
		f->ring_id = ring_id;
		strcpy(f->stream, stream);
		strcpy(f->durable, durable);
		atomic_thread_fence(memory_order_release);
		f->magic = INPOS_MAGIC;
	}
	*out = malloc(sizeof **out);
	if (!*out) {
		munmap(f, 4096);
		return -ENOMEM;
	}
	(*out)->f = f;
	return 0;
}

uint64_t inpos_committed(struct inpos *p, uint64_t *uncertain)
{
	uint64_t c = atomic_load(&p->f->committed), pend = atomic_load(&p->f->pending);
	*uncertain = pend > c ? pend : 0;
	return c;
}

/* Plain stores are enough for a crash (the page outlives the process); seq_cst
 * keeps the order pending, put, committed for anyone reading the file. */
void inpos_begin(struct inpos *p, uint64_t seq)
{
	atomic_store(&p->f->pending, seq);
}

void inpos_commit(struct inpos *p, uint64_t seq)
{
	atomic_store(&p->f->committed, seq);
}

bool inpos_stream_instance(struct inpos *p, int64_t created)
{
	int64_t had = atomic_load(&p->f->stream_created);
	if (had == created)
		return false;
	if (had != 0) {   /* sequences of another stream: start afresh */
		atomic_store(&p->f->pending, 0);
		atomic_store(&p->f->committed, 0);
	}
	atomic_store(&p->f->stream_created, created);
	return had != 0;
}

void inpos_close(struct inpos *p)
{
	if (p) {
		munmap(p->f, 4096);
		free(p);
	}
}
