/*
 * layout.h - the shared-memory layout of a ring (private; ABI version 4).
 *
 * A ring file is four regions, each page-aligned:
 *
 *   offset 0            struct ring_header     5 pages: identity, indices,
 *                                              eventcounts, census, join
 *                                              counter, redelivery list
 *   attach_offset       struct attach_entry[m] the attachment table (m =
 *                       struct op_rec[m][64]   attach_count), then each
 *                                              entry's op records
 *   meta_offset         struct slot_meta[n]    one 16-byte entry per slot
 *   data_offset         data[n * 64]           record payloads, 64-byte slots
 *
 * except in the inline layout (max_record <= RING_INLINE_MAX, below): no
 * meta array, data_offset == meta_offset, and slot s's entry is the first
 * 16 bytes of slot s, its payload the other 48.
 *
 * The data region is mapped twice, back to back, so a record that runs past
 * the end of the ring continues, contiguously, in the second mapping.
 *
 * Positions are 64-bit slot counters that only grow; slot index = pos & mask.
 * A record at position p occupies slots [p, p + slots_for(len)); only its
 * first slot's meta entry describes it.  docs/design.md has the protocol,
 * with every memory order and the argument for each.
 */
#ifndef SHMRING_LAYOUT_H
#define SHMRING_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shmring.h"

#define RING_MAGIC      UINT64_C(0x31474e49524d4853) /* "SHMRING1", little-endian */
#define RING_ABI        4u /* 4: inline record headers when max_record <= RING_INLINE_MAX (issue 12) */
#define RING_PAGE       4096u
#define RING_HEADER_SIZE \
	((sizeof(struct ring_header) + RING_PAGE - 1) / RING_PAGE * RING_PAGE)
#define RING_SLOT_SHIFT 6u
#define RING_SLOT       (1u << RING_SLOT_SHIFT)

/* Separation for hot shared words.  128, not 64: x86's adjacent-line
 * prefetcher pulls cache lines in pairs.  Fixed here, never taken from a
 * library macro, so the layout cannot change with the build. */
#define RING_LINE 128

/* prod_head's top bit: the ring is closed.  Setting it makes every later
 * producer CAS fail, so "closed and prod_head == cons_head" is final. */
#define RING_CLOSED     (UINT64_C(1) << 63)
#define RING_POS_MASK   (~RING_CLOSED)

/* A slot's seq word: (pos << 2) | state.  pos is the record's position in
 * this lap, so a value left over from an earlier lap never matches. */
enum slot_state {
	SLOT_EMPTY     = 0, /* never written (the file starts zeroed)      */
	SLOT_COMMITTED = 1, /* the record at pos is complete, may be taken */
	SLOT_RELEASED  = 2, /* taken and done with: storage may be reused  */
	SLOT_REDELIVER = 3, /* SHMRING_REDELIVER: taken, not released, owned by
	                       an entry of the redelivery list (redeliver.h) */
};
#define SLOT_SEQ(pos, state) (((uint64_t)(pos) << 2) | (uint64_t)(state))

/* slot_meta.flags */
#define SLOT_F_SKIP 0x1u /* an aborted reservation or commit tail: deliver nothing */

struct slot_meta {
	_Atomic uint64_t seq;
	_Atomic uint32_t len;    /* payload bytes (a skip record: bytes it spans) */
	_Atomic uint16_t owner;  /* attachment of the producer (reserved: issue 3) */
	_Atomic uint16_t flags;
};

/* An eventcount (after folly's EventCount): one 64-bit word, the epoch in
 * the high half (the futex word) and the number of registered sleepers in
 * the low half.  A notifier that finds sleepers bumps the epoch and zeroes
 * the count in one CAS, then wakes them all; so until someone registers
 * again, later notifies cost no system call, and a count left raised by a
 * sleeper that died is cleared by the next notify. */
struct eventcount {
	_Atomic uint64_t word;
};
#define EC_WAITER     UINT64_C(1)
#define EC_WAITERS(w) ((uint32_t)(w))
#define EC_EPOCH(w)   ((uint32_t)((w) >> 32))
#define EC_NEXT(w)    ((uint64_t)(EC_EPOCH(w) + 1u) << 32)  /* epoch + 1, no waiters */

static inline _Atomic uint32_t *ec_futex_word(struct eventcount *ec)
{
	/* the high half of word on a little-endian machine */
	return (_Atomic uint32_t *)((char *)&ec->word + 4);
}

/* The attachment table: one entry per live handle that has taken a role.
 * id = pid | start_time << ATTACH_PID_BITS (start time in clock ticks since
 * boot, from /proc): a recycled pid has another start time. */
#define ATTACH_PID_BITS 22
#define ATTACH_PID_MASK ((UINT64_C(1) << ATTACH_PID_BITS) - 1)
#define ATTACH_PENDING_TAG (UINT64_C(1) << 63) /* a pending entry's id: parent's id | tag */
#define ATTACH_REAPING_TAG (UINT64_C(1) << 62) /* id while reaped: the reaper's id | tag */
#define ATTACH_ID_MASK     (ATTACH_REAPING_TAG - 1) /* pid and start time */
struct attach_entry {
	_Atomic uint64_t id;       /* 0: free */
	_Atomic uint32_t roles;    /* SHMRING_PRODUCER | SHMRING_CONSUMER */
	/* Op records [0, op_high) of this entry have been handed out at some
	 * time, and may hold puts (join: op_rec.puts).  Only grows, kept across
	 * the entry's reuse, as the records' puts are.  (A pending entry is the
	 * ATTACH_PENDING_TAG bit of id.) */
	_Atomic uint32_t op_high;
	_Atomic uint64_t since_ns; /* when pending was set (CLOCK_MONOTONIC) */
	_Atomic uint64_t op_busy; /* bitmap: which of the entry's op records are in use */
	/* Join accounting once the ring's join counter is in use (CENSUS_JOIN):
	 * records this attachment took, task_done calls it made.  A dead
	 * consumer's got - done tasks are forgiven (recover.c). */
	_Atomic uint64_t got;
	_Atomic uint64_t done;
	/* Broadcast rings (issue 13; broadcast.c): a subscriber's cursor (the
	 * oldest position it still needs: its next record, or the one it holds
	 * peeked) and its running lost count.  Meaningful while roles has
	 * ROLE_SUBSCRIBER; the sweep's exchange of roles to 0 drops them. */
	_Atomic uint64_t sub_cursor;
	_Atomic uint64_t sub_lost;
};
/* attach_entry.roles bits beyond SHMRING_PRODUCER | SHMRING_CONSUMER (never
 * in the census): this entry subscribes to a broadcast ring, and how. */
#define ROLE_SUBSCRIBER 0x100u /* a subscriber: sub_cursor is valid */
#define ROLE_SUB_LOSSY  0x200u /* producers never wait for it */

/* An op record: announced in shared memory before the CAS that claims
 * slots (producer) or takes records (consumer), cleared when the claim is
 * published or released; what a sweep reads to finish a dead process's
 * claims (recover.c).  word = (pos << 2) | kind; end = the claim's end. */
#define OPREC_PER_ENTRY 64 /* operations in flight per attachment (threads x spans) */
enum op_kind {
	OPREC_FREE = 0,
	OPREC_PRODUCE = 1,  /* claiming or claimed slots, tasks not yet counted */
	OPREC_COUNTED = 2,  /* the same, its records already counted in puts (join) */
	OPREC_CONSUME = 3,  /* taking or taken records, not all released yet */
};
#define OPREC_WORD(pos, kind) (((uint64_t)(pos) << 2) | (uint64_t)(kind))
#define OPREC_POS(w)          ((w) >> 2)
#define OPREC_KIND(w)         ((unsigned)((w) & 3))
#define OPREC_EXTENT(slots, records) ((uint64_t)(slots) | ((uint64_t)(records) << 32))
#define OPREC_SLOTS(x)   ((uint32_t)(x))
/* In a CONSUME record's records field: the tasks of the records it took are
 * counted in attach.got (join was in use when it announced), so a sweep
 * that releases them as lost does not forgive them again (recover.c). */
#define OPREC_R_GOT      (UINT32_C(1) << 31)
#define OPREC_RECORDS(x) ((uint32_t)((x) >> 32) & ~OPREC_R_GOT)
#define OPREC_GOT(x)     (((uint32_t)((x) >> 32) & OPREC_R_GOT) != 0)
#define OPREC_PROGRESS_SET          (UINT64_C(1) << 63)
#define OPREC_PROGRESS(recs, slots) (OPREC_PROGRESS_SET | ((uint64_t)(recs) << 32) | (uint32_t)(slots))
#define OPREC_PROGRESS_RECS(w)      ((uint32_t)((w) >> 32) & 0x7fffffffu)
#define OPREC_PROGRESS_SLOTS(w)     ((uint32_t)(w))
struct op_rec {
	_Atomic uint64_t word;
	_Atomic uint64_t extent; /* slots covered, and how many records in them */
	/* Join (issue 12): the records ever put through this op record, every
	 * put's task counted here before its record is published.  One writer
	 * at a time (the thread that holds the record: plain relaxed load and
	 * store, no locked instruction); only grows, never reset (not when the
	 * entry is reused either).  Unfinished tasks = the sum over every op
	 * record ever handed out (attach_entry.op_high, header join_entries)
	 * - join.count (join.c). */
	_Atomic uint64_t puts;
	/* A batch's publication so far (batch.c, slot.c publish_many):
	 * OPREC_PROGRESS(records published, the slots they cover), set to
	 * (0, 0) before the claim is marked COUNTED and after each record's
	 * publication; one writer, as puts.  Recovery counts a dead batch's
	 * unpublished records from it (recover.c stretch_tasks).  0 (never
	 * written: a library before it) or left by an earlier claim of a
	 * single record: not used. */
	_Atomic uint64_t progress;
};

/* The census: live producers and consumers, and whether each has ever
 * existed, in one word so that a put or get checks it with one load. */
#define CENSUS_PRODUCER      UINT64_C(1)
#define CENSUS_CONSUMER      (UINT64_C(1) << 16)
#define CENSUS_PRODUCERS(c)  ((unsigned)((c) & 0xffff))
#define CENSUS_CONSUMERS(c)  ((unsigned)(((c) >> 16) & 0xffff))
#define CENSUS_EVER_PRODUCER (UINT64_C(1) << 32)
#define CENSUS_EVER_CONSUMER (UINT64_C(1) << 33)
#define CENSUS_JOIN          (UINT64_C(1) << 34) /* task_done or join was used */
/* Arrival generations: + 1 (mod 2^14) each time a producer (consumer) role
 * is counted, in the same CAS as the count, so that a handle can tell
 * whether a producer (consumer) has come since it looked (shmring_open:
 * history before it is not its end of stream; attach.h ring_eof). */
#define CENSUS_PGEN_SHIFT    35
#define CENSUS_CGEN_SHIFT    49
#define CENSUS_GEN_MASK      UINT64_C(0x3fff)
#define CENSUS_PGEN(c)       (((c) >> CENSUS_PGEN_SHIFT) & CENSUS_GEN_MASK)
#define CENSUS_CGEN(c)       (((c) >> CENSUS_CGEN_SHIFT) & CENSUS_GEN_MASK)

/* A futex counter: the join counter here, struct shmring_latch outside
 * (latch.c); waiters sleep on ec until count is 0. */
struct latch {
	_Atomic int64_t   count;
	struct eventcount ec;
};

/* Ring-wide state of lossy delivery (issue 13).
 * tail, word: the frontier of a broadcast ring (changed together, by a
 *   16-byte CAS): every position below tail may be overwritten; word =
 *   recno << 16 | gen, recno = records (skip records excluded) below tail,
 *   modulo 2^48; gen = + 1 per subscription, so that a frontier advance
 *   computed before a subscriber joined fails its CAS (broadcast.c).
 * dropped: puts refused because the ring was full (any ring).
 * overwritten, overflow: records a put on a SHMRING_OVERWRITE ring took and
 *   discarded; overflow = 1 until the next get reports -EOVERFLOW. */
#define BCAST_GEN_BITS 16
#define BCAST_GEN_MASK ((UINT64_C(1) << BCAST_GEN_BITS) - 1)
#define BCAST_RECNO(w) ((w) >> BCAST_GEN_BITS)
#define BCAST_RECNO_MASK (~UINT64_C(0) >> BCAST_GEN_BITS)
struct bcast_state {
	alignas(16) _Atomic uint64_t tail;
	_Atomic uint64_t word;
	_Atomic uint64_t dropped;
	_Atomic uint64_t overwritten;
	_Atomic uint32_t overflow;
	uint32_t pad;
};

/* SHMRING_REDELIVER: the redelivery list (redeliver.h, docs/design.md
 * section 9).  One cache-line-aligned member of the header. */
#define REDELIVER_ENTRIES 1024 /* records parked, held again or dead-lettered at once */
struct redeliver_entry {
	_Atomic uint64_t word; /* RDL_WORD(version, holder, deliveries, state) */
	_Atomic uint64_t pos;  /* the record's position (valid unless FREE) */
};
struct redeliver_area {
	/* Read-mostly: written when a record is parked, taken from the list or
	 * dead-lettered, never on a plain take.  pending is the one word a
	 * consumer's take loads (relaxed) on a redelivery ring. */
	alignas(RING_LINE) _Atomic int64_t pending; /* WAITING entries */
	_Atomic uint32_t max_deliveries;  /* creator, before magic; 0: unlimited */
	uint32_t pad0;
	_Atomic uint64_t high;            /* every entry in use is below this */
	_Atomic uint64_t dead_waiting;    /* DEAD entries (not being read) */
	_Atomic uint64_t dead_letters;    /* statistics: records dead-lettered */
	_Atomic uint64_t redelivered;     /* statistics: records parked for redelivery */
	alignas(RING_LINE) struct redeliver_entry list[REDELIVER_ENTRIES];
};

struct ring_header {
	/* Identity and geometry: written once by the creator before magic. */
	uint64_t magic;
	uint32_t abi;
	uint32_t slot_size;
	uint64_t capacity;     /* data bytes, a power of two */
	uint64_t max_record;
	uint64_t meta_offset;
	uint64_t data_offset;
	uint64_t file_size;
	uint32_t header_size;
	uint32_t flags;        /* RING_HDR_NAMED, _PERSISTENT, _BROADCAST, _OVERWRITE */
	uint64_t attach_offset; /* the attachment region: attach_count entries, */
	uint32_t attach_count;  /* then their op records (ring_attach_bytes) */
	uint32_t pad_id;
	uint64_t pid_ns;        /* the creator's PID namespace (0: unknown) */

	/* Producers' claim index (+ RING_CLOSED).  Written by producers only. */
	alignas(RING_LINE) _Atomic uint64_t prod_head;
	/* Consumers' claim index.  Written by consumers only. */
	alignas(RING_LINE) _Atomic uint64_t cons_head;
	/* Every slot before free_tail is released and reusable.  Advanced by
	 * whichever producer needs room (helping), over released records. */
	alignas(RING_LINE) _Atomic uint64_t free_tail;

	alignas(RING_LINE) struct eventcount not_empty; /* consumers sleep here */
	alignas(RING_LINE) struct eventcount not_full;  /* producers sleep here */

	/* Read-mostly: a copy of prod_head's RING_CLOSED bit that a spinning
	 * waiter can poll without stealing the producers' line, and the census. */
	alignas(RING_LINE) _Atomic uint32_t closed;
	uint32_t pad0;
	_Atomic uint64_t census;
	/* Statistics, touched on slow paths only. */
	_Atomic uint64_t futex_waits;
	_Atomic uint64_t futex_wakes;
	/* CLOCK_MONOTONIC ns of the last liveness sweep (rate limit). */
	_Atomic uint64_t reap_ns;
	/* Crash recovery (recover.c): dead producers' unpublished claims turned
	 * into skip records; records a dead consumer took and never released;
	 * unfinished tasks forgiven with them. */
	_Atomic uint64_t recovered_claims;
	_Atomic uint64_t lost_records;
	_Atomic uint64_t lost_tasks;

	/* Join (join.c): join.count is the tasks finished (+ per task_done, per
	 * task forgiven), never more than the puts counted in the op records;
	 * unfinished = that sum - count; join waits on join.ec for 0.  Entries
	 * [0, join_entries) have had op records handed out (so may hold puts):
	 * only grows. */
	alignas(RING_LINE) struct latch join;
	_Atomic uint32_t join_entries;
	uint32_t pad_join;

	/* SHMRING_REDELIVER (redeliver.c): zero on other rings. */
	alignas(RING_LINE) struct redeliver_area rdl;

	/* Broadcast rings and lossy plain rings (issue 13; broadcast.c,
	 * overwrite.c).  The last ring-wide line: after join and issue 14's redeliver area
	 * (rdl). */
	alignas(RING_LINE) struct bcast_state bcast;
};

/* Entry i and its op record k, located through the header's own geometry:
 * for tests and tools holding a raw mapping of a ring they made.  The
 * library never uses these (it locates the region once, from a validated
 * copy: handle.h ring_attach, ring_op_rec). */
static inline struct attach_entry *layout_attach(struct ring_header *h, uint64_t i)
{
	return (struct attach_entry *)((char *)h + h->attach_offset) + i;
}
static inline struct op_rec *layout_op_rec(struct ring_header *h, uint64_t i, unsigned k)
{
	struct op_rec *first = (struct op_rec *)layout_attach(h, h->attach_count);
	return first + i * OPREC_PER_ENTRY + k;
}

/* Bytes of the attachment region for m entries: the table, then each
 * entry's OPREC_PER_ENTRY op records, to a whole page. */
static inline uint64_t ring_attach_bytes(uint64_t m)
{
	uint64_t b = m * (sizeof(struct attach_entry) + OPREC_PER_ENTRY * sizeof(struct op_rec));
	return (b + RING_PAGE - 1) / RING_PAGE * RING_PAGE;
}

#define RING_HDR_NAMED      0x1u
#define RING_HDR_PERSISTENT 0x2u /* SHMRING_PERSISTENT: no end of stream, no broken pipe */
#define RING_HDR_BROADCAST  0x4u /* SHMRING_BROADCAST (broadcast.c) */
#define RING_HDR_OVERWRITE  0x8u /* SHMRING_OVERWRITE (overwrite.c) */
#define RING_HDR_REDELIVER  0x10u /* made with SHMRING_REDELIVER (redeliver.c) */
#define RING_HDR_LIGHT      0x20u /* SHMRING_LIGHT_PUBLISH: light notifiers, fenced sleepers (fence.h) */

/* The layout is ABI: pin it. */
_Static_assert(sizeof(struct slot_meta) == 16, "slot_meta is 16 bytes");
_Static_assert(RING_HEADER_SIZE == 5 * RING_PAGE, "header size is ABI");
_Static_assert(offsetof(struct ring_header, magic) == 0, "magic first");
_Static_assert(offsetof(struct ring_header, abi) == 8, "abi at 8");
_Static_assert(offsetof(struct ring_header, prod_head) == 128, "prod_head line");
_Static_assert(offsetof(struct ring_header, cons_head) == 256, "cons_head line");
_Static_assert(offsetof(struct ring_header, free_tail) == 384, "free_tail line");
_Static_assert(offsetof(struct ring_header, not_empty) == 512, "not_empty line");
_Static_assert(offsetof(struct ring_header, not_full) == 640, "not_full line");
_Static_assert(offsetof(struct ring_header, closed) == 768, "read-mostly line");
_Static_assert(offsetof(struct ring_header, census) == 776, "census");
_Static_assert(offsetof(struct ring_header, futex_waits) == 784, "stats");
_Static_assert(offsetof(struct ring_header, lost_records) == 816, "recovery stats");
_Static_assert(offsetof(struct ring_header, attach_offset) == 64, "attachment region geometry");
_Static_assert(offsetof(struct ring_header, join) == 896, "join counter line");
_Static_assert(offsetof(struct ring_header, rdl) == 1024, "redelivery area");
_Static_assert(sizeof(struct redeliver_area) == 128 + 16 * REDELIVER_ENTRIES, "redelivery area size");
_Static_assert(sizeof(struct op_rec) == 32, "op record");
_Static_assert(offsetof(struct ring_header, join_entries) == 912, "join line");
_Static_assert(SHMRING_MAX_ATTACH_LIMIT <= 0xffff, "the census counts 16 bits per role");
/* issue 13: bcast is the last line of the header, after join and rdl. */
_Static_assert(offsetof(struct ring_header, bcast) == 1024 + 128 + 16 * REDELIVER_ENTRIES, "broadcast line");
_Static_assert(sizeof(struct ring_header) == 1024 + 128 + 16 * REDELIVER_ENTRIES + RING_LINE, "header end");
_Static_assert(offsetof(struct ring_header, bcast.tail) % 16 == 0, "16-byte CAS pair");
_Static_assert(sizeof(struct bcast_state) <= RING_LINE, "one line");
_Static_assert(sizeof(struct attach_entry) == 64, "attach entry");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ec_futex_word assumes little-endian");
_Static_assert(OPREC_PER_ENTRY == SHMRING_MAX_INFLIGHT, "public in-flight limit");
_Static_assert(RING_SLOT == SHMRING_SLOT_SIZE, "public slot size matches");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "shared atomics must be lock-free (address-free)");

/* The inline layout (issue 12): a ring whose records are at most
 * RING_INLINE_MAX bytes keeps each slot's meta entry in the first 16 bytes
 * of the slot itself, and the payload in the other 48, so that a record is
 * one cache line to write, hand over and read (the split layout moves a
 * meta line and a data line).  No record's payload ever covers the start of
 * a slot there (every record but a skip record is one slot), so the first
 * 16 bytes of every slot only ever hold a meta entry: the protocol is the
 * split layout's, word for word; only where the entry lies differs
 * (docs/design.md section 1).  Chosen by max_record alone, so that the
 * header's geometry says which layout a file has. */
#define RING_INLINE_MAX (RING_SLOT - (uint32_t)sizeof(struct slot_meta)) /* 48 */
static inline int ring_layout_inline(uint64_t maxrec)
{
	return maxrec <= RING_INLINE_MAX;
}
_Static_assert(RING_INLINE_MAX == SHMRING_INLINE_MAX_RECORD, "public inline limit matches");

static inline uint64_t slots_for(uint64_t len)
{
	return len ? (len + RING_SLOT - 1) >> RING_SLOT_SHIFT : 1;
}

#endif /* SHMRING_LAYOUT_H */
