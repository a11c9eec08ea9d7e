/* records.c - stress_procs: the record format: making and checking records, random lengths and timeouts (stress_procs.h). */
#include "../stress_procs.h"

/* ---- records ---------------------------------------------------------------- */

static unsigned char compact_byte(uint64_t id, size_t i)
{
	return (unsigned char)((mix(id) >> (i % 8 * 8)) ^ i);
}

static uint64_t compact_word(uint64_t id, size_t len)
{
	return id | (mix(id * 131 + len) >> ID_BITS << ID_BITS);
}

/* A random length in 0..max_record, mostly small. */
size_t rand_len(uint64_t *rng)
{
	uint64_t r = rnd(rng);
	size_t len;
	switch (r % 40) {
	case 0: case 1:
		len = (r >> 8) % NTINY;				/* tiny */
		break;
	case 2: case 3:
		len = COMPACT + (r >> 8) % (HDR - COMPACT);	/* compact */
		break;
	case 4: case 5:
		len = max_record;				/* the largest */
		break;
	case 6: case 7: case 8: case 9: case 10: case 11: case 12: case 13: case 14: case 15:
		len = (r >> 8) % (max_record + 1);		/* any */
		break;
	default:
		len = HDR + (r >> 8) % (512 - HDR + 1);		/* small */
		break;
	}
	return len < max_record ? len : max_record;
}

uint64_t key_for(size_t len, uint64_t id)
{
	return len >= COMPACT ? id : TINY_KEY | len;
}

/* Write the record (len bytes, name key) at dst. */
void make_record(unsigned char *dst, size_t len, uint64_t key, uint32_t inc, uint32_t slot,
			unsigned api, uint64_t *rng)
{
	if (len < COMPACT) {
		for (size_t i = 0; i < len; i++)
			dst[i] = tiny_byte(len, i);
		return;
	}
	if (len < HDR) {
		uint64_t w = compact_word(key, len);
		memcpy(dst, &w, 8);
		for (size_t i = 8; i < len; i++)
			dst[i] = compact_byte(key, i);
		return;
	}
	uint16_t slot16 = (uint16_t)slot, api16 = (uint16_t)api;
	uint32_t len32 = (uint32_t)len, stamp = stamp_now();
	memcpy(dst + 8, &key, 8);
	memcpy(dst + 16, &inc, 4);
	memcpy(dst + 20, &slot16, 2);
	memcpy(dst + 22, &api16, 2);
	memcpy(dst + 24, &len32, 4);
	memcpy(dst + 28, &stamp, 4);
	for (size_t i = HDR; i < len; i += 8) {
		uint64_t r = rnd(rng);
		memcpy(dst + i, &r, len - i < 8 ? len - i : 8);
	}
	uint64_t sum = fnv1a(dst + 8, len - 8);
	memcpy(dst, &sum, 8);
}

/* Check a record taken by a consumer; returns its key (BAD_KEY if corrupt)
 * and its stamp in *stamp (0 if it has none). */
uint64_t check_record(const unsigned char *p, size_t len, uint32_t *stamp)
{
	*stamp = 0;
	if (len > max_record) {
		violation("record of %zu bytes > max_record %zu", len, max_record);
		return BAD_KEY;
	}
	if (len < COMPACT) {
		for (size_t i = 0; i < len; i++)
			if (p[i] != tiny_byte(len, i)) {
				violation("%zu-byte record corrupt at byte %zu", len, i);
				return BAD_KEY;
			}
		return TINY_KEY | len;
	}
	uint64_t id, w;
	if (len < HDR) {
		memcpy(&w, p, 8);
		id = w & ((UINT64_C(1) << ID_BITS) - 1);
		if (id >= ids_cap || w != compact_word(id, len)) {
			violation("%zu-byte record: corrupt compact header %016llx", len,
				  (unsigned long long)w);
			return BAD_KEY;
		}
		for (size_t i = 8; i < len; i++)
			if (p[i] != compact_byte(id, i)) {
				violation("%zu-byte record id %llu corrupt at byte %zu", len,
					  (unsigned long long)id, i);
				return BAD_KEY;
			}
		if (!atomic_load_explicit(&owner[id / BLOCK_IDS], memory_order_acquire)) {
			violation("%zu-byte record id %llu: id never handed out", len,
				  (unsigned long long)id);
			return BAD_KEY;
		}
		return id;
	}
	uint64_t sum;
	uint32_t inc, len32;
	uint16_t slot;
	memcpy(&sum, p, 8);
	memcpy(&id, p + 8, 8);
	memcpy(&inc, p + 16, 4);
	memcpy(&slot, p + 20, 2);
	memcpy(&len32, p + 24, 4);
	memcpy(stamp, p + 28, 4);
	uint64_t want = fnv1a(p + 8, len - 8);
	if (sum != want || len32 != len || id >= ids_cap || inc >= MAX_INC) {
		violation("corrupt (torn?) record: %zu bytes, header says %u bytes, id %llu, "
			  "producer incarnation %u, checksum %s", len, len32,
			  (unsigned long long)id, inc, sum == want ? "ok" : "BAD");
		*stamp = 0;
		return BAD_KEY;
	}
	uint32_t own = atomic_load_explicit(&owner[id / BLOCK_IDS], memory_order_acquire);
	if (own != inc + 1 || sh->pinc[inc].slot != slot) {
		violation("record id %llu says producer %u incarnation %u; the id belongs to "
			  "incarnation %d (slot %u)", (unsigned long long)id, slot, inc,
			  (int)own - 1, own ? sh->pinc[own - 1].slot : 0);
		*stamp = 0;
		return BAD_KEY;
	}
	return id;
}

int64_t rand_timeout(uint64_t *rng)
{
	uint64_t r = rnd(rng) % 10;
	if (r < 3)
		return 0;				/* never wait; retry later */
	if (r < 6)
		return 1000 + (int64_t)(rnd(rng) % 500000);	/* 1 us to 0.5 ms */
	return -1;
}

/* Sometimes hold a span (a reservation, a peeked record) a while, as an
 * application working in place would: a kill then finds it held. */
void maybe_hold(uint64_t *rng)
{
	if (opt.hold_pct && rnd(rng) % 100 < opt.hold_pct)
		usleep((useconds_t)(rnd(rng) % (opt.hold_us + 1)));
}
