/*
 * cli.h - the shmring(1) command: what its subcommand files share.
 * man/shmring.1.scd documents the command; main.c dispatches.
 */
#ifndef SHMRING_CLI_H
#define SHMRING_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "shmring.h"
#include "shmring_inspect.h"
#include "shmring_broadcast.h"

#define EXIT_USAGE 2            /* exit status of a usage error */
#define SHM_DIR "/dev/shm"      /* where shm_open keeps named rings */
#define WAIT_SLICE_NS 100000000LL /* a bounded wait between looks at cli_stop */

/* common.c */
extern volatile sig_atomic_t cli_stop;   /* the SIGINT/SIGTERM received, or 0 */
void cli_signals(void);                  /* install the handlers, ignore SIGPIPE */
int  exit_for_signal(void);              /* 128 + cli_stop */
int  usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int  ring_error(const char *name, int err);      /* prints, returns 1 */
const char *ring_error_text(int err);
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int  parse_size(const char *s, size_t *out);     /* 4096, 64K, 4M, 1G */
int  parse_seconds(const char *s, double *out);
void human_size(char *buf, size_t n, unsigned long long v);
int  list_shm_names(char ***names, size_t *count); /* sorted; free_names */
void free_names(char **names, size_t count);
void json_string(FILE *f, const char *s);
const char *roles_text(unsigned roles);
const char *attach_state_text(int state);

/* view.c: one ring as ls and stat show it, checked now. */
struct ring_view {
	const char *name;
	int status;                       /* shmring_probe's result */
	struct shmring_probe probe;
	struct shmring_info info;
	struct shmring_attachment *att;   /* natt of them, sized to the ring's table */
	int natt;
	unsigned live_producers, live_consumers;
	int swept;                        /* entries shmring_check_peers freed */
	struct shmring_traffic traffic;
	/* broadcast rings: the live subscribers (shmring_subscribers), and
	 * the attachment entry each one's pid has (-1: none seen) */
	struct shmring_subscriber *sub;
	int *sub_att;
	int nsub;                         /* entries in sub[] */
	int subscribers;                  /* all of them (may exceed nsub) */
};
/* 0 if it is a ring and was read; else the probe's error (v->status).  v
 * starts zeroed (calloc); a load frees what the last one into it held.  The
 * tables are the ring's size: above 256 attachments (SHMRING_MAX_ATTACH, no
 * longer a bound here) the counts and pids were cut there. */
int view_load(const char *name, struct ring_view *v);
void view_free(struct ring_view *v);
/* shmring_probe, with the SIGBUS of a file cut meanwhile caught: -EFAULT. */
int view_probe(const char *name, struct shmring_probe *out);
/* shmring_unlink_stale, guarded as view_probe (a file cut under it is
 * -EFAULT, not a SIGBUS). */
int view_unlink_stale(const char *name, unsigned flags);
const char *view_state(const struct ring_view *v); /* open, closed, eof */
const char *view_kind(const struct ring_view *v);  /* pipe, persistent, broadcast, ... */
const char *sub_policy(const struct shmring_subscriber *s); /* tethered, lossy */
const char *sub_liveness(const struct ring_view *v, int i); /* live, dead, ... */
const char *status_word(int status);  /* ring, not-a-ring, being-made, ... */
/* ls.c: one view as a JSON object (stat adds the attachment table). */
void view_json(FILE *f, const struct ring_view *v, bool attachments);

/* records.c: the record formats put reads and cat writes. */
enum rec_format { FMT_LINES, FMT_NUL, FMT_FRAMED };
#define FRAME_HEADER 4 /* bytes: the record's length, unsigned, big-endian */
void frame_header(unsigned char out[FRAME_HEADER], uint32_t len);
uint32_t frame_length(const unsigned char in[FRAME_HEADER]);
/* Write one record to f in a format (hex: a hexdump -C style dump headed by
 * its number); false if f failed. */
bool write_record(FILE *f, enum rec_format fmt, bool hex, unsigned long long number,
                  const void *data, size_t len);
/* Open a ring to put to or take from: probe first (clear errors, no waiting
 * on what is not a ring), then shmring_open, which may wait up to a second
 * for a ring still being made.  Prints the error. */
int open_member(const char *name, struct shmring **ring);

/* subcommands */
int cmd_ls(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_put(int argc, char **argv);
int cmd_cat(int argc, char **argv);

#endif /* SHMRING_CLI_H */
