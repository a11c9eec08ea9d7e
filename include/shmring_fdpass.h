/*
 * shmring_fdpass.h - hand a ring to another process over a Unix socket.
 *
 * An anonymous ring exists only as a file descriptor.  shmring_send_fd sends
 * it (SCM_RIGHTS) over a connected AF_UNIX socket; the receiver gets its own
 * descriptor with shmring_recv_fd and attaches with shmring_attach_fd.
 * Errors follow <shmring.h>.
 */
#ifndef SHMRING_FDPASS_H
#define SHMRING_FDPASS_H

#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Send fd (typically shmring_fd(ring)) with one byte of payload. */
SHMRING_API int shmring_send_fd(int sock, int fd);
/* Receive one fd sent by shmring_send_fd; the new descriptor is O_CLOEXEC.
 * timeout_ns as everywhere; -EPIPE if the peer closed the socket.  A message
 * that carries no fd, or more than one, is -EBADMSG (-EMSGSIZE if it carried
 * more than 16, MSG_CTRUNC); either way every fd it brought is closed and
 * *fd is left as it was, so a peer cannot fill our fd table. */
SHMRING_API int shmring_recv_fd(int sock, int *fd, int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_FDPASS_H */
