/*
 * scribble.h - the input language of fuzz_scribble (shared with the seed
 * corpus generator, gen_corpus.c, so that seeds are real programs).
 *
 * An input is:   setup byte, then instructions until the bytes run out.
 *
 *   setup:  bit 0      capacity 4 KiB (0) or 8 KiB (1)
 *           bits 1-2   max_record: capacity/4 (default), 1, 200, capacity
 *           bits 3-4   roles declared at create (SHMRING_PRODUCER/CONSUMER)
 *           bit 5      spin 0 (no busy-wait before sleeping)
 *           bit 6      concurrent: the peer's writes run in a thread of
 *                      their own, repeatedly, while the victim's calls run
 *
 *   instruction: one opcode byte, then its operands (below).  A missing
 *   operand byte reads as 0 and ends the program after this instruction.
 *
 * Operand encodings:
 *   VALUE  one kind byte (mod V_KINDS), then the kind's bytes (a u64 built
 *          from the ring's current indices, or raw): see value() in
 *          fuzz_scribble.c.
 *   LEN32  one kind byte (mod L_KINDS), then its bytes: see len32().
 *   TMO    one byte: 0..5 -> timeout 0, 6 -> 1 ms, 7 -> 2 ms (mod 8).
 *   H      one byte: bit 0 picks handle A (0) or B (1; attached on demand).
 */
#ifndef FUZZ_SCRIBBLE_H
#define FUZZ_SCRIBBLE_H

enum scribble_op {
	/* The peer: writes into the shared mapping. */
	OP_RAW = 0,      /* u32 offset (mod file size), u8 n (mod 16, +1), n bytes     */
	OP_HDR,          /* u8 field (mod the field table), VALUE                        */
	OP_META,         /* u8 base (0 cons_head 1 prod_head 2 free_tail 3 zero), i8 delta,
	                    u8 state (bits 0-1; bit 2: raw seq = VALUE follows), LEN32,
	                    u8 flags                                                     */
	OP_ENTRY,        /* u8 entry (mod 64), u8 field (mod 7), VALUE                    */
	OP_CLAIM,        /* u8 entry (mod 64), u8 rec (mod 64), u8 kind (mod 4), VALUE pos,
	                    LEN32 slots, u8 records; marks the rec busy                  */
	OP_KILL,         /* u8 entry (mod 64), u8 how: make the entry's id a dead process */
	/* The victim: library calls. */
	OP_PUT,          /* H, u16 len, TMO                                              */
	OP_PUTV,         /* H, u8 len1, u16 len2, TMO                                    */
	OP_GET,          /* H, u16 cap, TMO                                              */
	OP_PEEK,         /* H, TMO: the span is kept (at most 4 outstanding)             */
	OP_RELEASE,      /* u8 which outstanding peek                                    */
	OP_RESERVE,      /* H, u16 len, TMO: the span is kept (at most 4 outstanding)    */
	OP_COMMIT,       /* u8 which reservation, u16 len (mod reserved + 1)             */
	OP_ABORT,        /* u8 which reservation                                         */
	OP_GET_MANY,     /* H, u16 cap, u8 max (mod 32, +1), TMO                          */
	OP_PUT_MANY,     /* H, u8 n (mod 8, +1), n x u16 len, TMO                         */
	OP_NEXT_LEN,     /* H                                                            */
	OP_INFO,         /* H                                                            */
	OP_CLOSE,        /* H                                                            */
	OP_TASK_DONE,    /* H                                                            */
	OP_JOIN,         /* H, TMO                                                       */
	OP_POLL,         /* u8 events A, u8 events B, TMO                                 */
	OP_REAP,         /* H: a liveness sweep now (shmring__reap), recovering the dead     */
	OP_MAYBE_REAP,   /* H: the rate-limited sweep (shmring__maybe_reap)                  */
	OP_DECLARE,      /* H, u8 roles (mod 3, +1)                                       */
	OP_LEAVE,        /* H, u8 roles (mod 3, +1)                                       */
	OP_DETACH_B,     /* detach handle B (its spans are dropped)                      */
	OP_UNUSED_LAST
};

enum { V_SMALL, V_RAW, V_PROD, V_CONS, V_FREE, V_LAPS, V_TOPBIT, V_NEARMAX, V_HIGH32, V_KINDS };
enum { L_SMALL, L_U16, L_MAXREC, L_CAPACITY, L_NEARMAX, L_RAW, L_SLOTS, L_KINDS };

/* OP_HDR's field table, in this order. */
enum {
	HF_PROD_HEAD, HF_CONS_HEAD, HF_FREE_TAIL, HF_NOT_EMPTY, HF_NOT_FULL, HF_CLOSED,
	HF_CENSUS, HF_REAP_NS, HF_JOIN_COUNT, HF_JOIN_EC, HF_FUTEX_WAITS, HF_RECOVERED,
	HF_LOST_RECORDS, HF_LOST_TASKS, HF_MAGIC, HF_CAPACITY, HF_MAX_RECORD, HF_COUNT
};

/* OP_ENTRY's fields. */
enum { EF_ID, EF_ROLES, EF_OP_HIGH, EF_SINCE, EF_CLAIM_BUSY, EF_GOT, EF_DONE, EF_COUNT };

#endif /* FUZZ_SCRIBBLE_H */
