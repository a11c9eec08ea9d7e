/*
 * records.c - the record formats of put and cat (shmring(1), FORMATS):
 * lines, NUL-terminated, framed (a 4-byte big-endian length, then the
 * bytes), and cat's hex dump.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"

void frame_header(unsigned char out[FRAME_HEADER], uint32_t len)
{
	out[0] = (unsigned char)(len >> 24);
	out[1] = (unsigned char)(len >> 16);
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
}

uint32_t frame_length(const unsigned char in[FRAME_HEADER])
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

static bool hex_dump(FILE *f, unsigned long long number, const unsigned char *p, size_t len)
{
	fprintf(f, "record %llu: %zu bytes\n", number, len);
	for (size_t off = 0; off < len; off += 16) {
		size_t n = len - off < 16 ? len - off : 16;
		fprintf(f, "%08zx ", off);
		for (size_t i = 0; i < 16; i++) {
			if (i == 8)
				fputc(' ', f);
			if (i < n)
				fprintf(f, " %02x", p[off + i]);
			else
				fputs("   ", f);
		}
		fputs("  |", f);
		for (size_t i = 0; i < n; i++)
			fputc(p[off + i] >= 0x20 && p[off + i] < 0x7f ? p[off + i] : '.', f);
		fputs("|\n", f);
	}
	return !ferror(f);
}

bool write_record(FILE *f, enum rec_format fmt, bool hex, unsigned long long number,
                  const void *data, size_t len)
{
	if (hex)
		return hex_dump(f, number, data, len);
	if (fmt == FMT_FRAMED) {
		unsigned char h[FRAME_HEADER];
		frame_header(h, (uint32_t)len);
		if (fwrite(h, 1, sizeof h, f) != sizeof h)
			return false;
	}
	if (len && fwrite(data, 1, len, f) != len)
		return false;
	if (fmt == FMT_LINES && putc('\n', f) == EOF)
		return false;
	if (fmt == FMT_NUL && putc('\0', f) == EOF)
		return false;
	return true;
}

int open_member(const char *name, struct shmring **ring)
{
	int rc = view_probe(name, NULL);
	/* -EAGAIN: maybe a creator at work; shmring_open gives it a second */
	if (rc == 0 || rc == -EAGAIN) {
		int was = rc;
		rc = shmring_open(ring, name);
		if (was == -EAGAIN && (rc == -EBADMSG || rc == -EPROTO))
			rc = was; /* still blank after the wait: say that */
	}
	if (rc)
		return ring_error(name, rc);
	return 0;
}
