/*
 * liveness.h - process identity and liveness (private; liveness.c).
 *
 * An attachment id is pid | start_time << ATTACH_PID_BITS, the start time
 * from /proc/<pid>/stat: a recycled pid has another start time.
 */
#ifndef SHMRING_LIVENESS_H
#define SHMRING_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

/* This process's id (a getpid and, once per process, /proc): 0, or the
 * error reading its start time (then nothing may be registered). */
int shmring__self_id(uint64_t *id);
/* This process's PID namespace (an inode number; 0 if unknown). */
uint64_t shmring__pid_ns(void);
/* Is the process behind an attachment id alive?  A zombie is dead. */
bool shmring__id_alive(uint64_t id);

#endif /* SHMRING_LIVENESS_H */
