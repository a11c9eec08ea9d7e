/*
 * test_validate.c - attach_fd / open on files that are not (whole) rings:
 * empty, random bytes, zeroes, bad magic (-EPROTO), other ABI version
 * (-EPROTONOSUPPORT: a ring, of another layout), truncated (-EBADMSG, never
 * SIGBUS), size mismatch and inconsistent geometry (-EBADMSG), corrupt
 * record metadata at run time.
 */
#include "common.h"

#include <stddef.h>
#include <sys/socket.h>

/* Header offsets, as documented in ring/layout.h (ABI version 1): a u64 magic
 * at 0 and a u32 ABI version at 8, then the geometry.  When layout.h is on
 * the include path they are checked against it. */
#define OFF_MAGIC       0
#define OFF_ABI         8
#define OFF_SLOT_SIZE   12
#define OFF_CAPACITY    16
#define OFF_MAX_RECORD  24
#define OFF_META_OFFSET 32
#define OFF_DATA_OFFSET 40
#define OFF_FILE_SIZE   48
#define OFF_HEADER_SIZE 56
#define OFF_ATTACH_OFFSET 64
#define OFF_ATTACH_COUNT  72
#define OFF_FLAGS       60

#if defined(__has_include)
#if __has_include("layout.h")
#include "layout.h"
_Static_assert(offsetof(struct ring_header, magic) == OFF_MAGIC, "magic");
_Static_assert(offsetof(struct ring_header, abi) == OFF_ABI, "abi");
_Static_assert(offsetof(struct ring_header, slot_size) == OFF_SLOT_SIZE, "slot_size");
_Static_assert(offsetof(struct ring_header, capacity) == OFF_CAPACITY, "capacity");
_Static_assert(offsetof(struct ring_header, max_record) == OFF_MAX_RECORD, "max_record");
_Static_assert(offsetof(struct ring_header, meta_offset) == OFF_META_OFFSET, "meta_offset");
_Static_assert(offsetof(struct ring_header, data_offset) == OFF_DATA_OFFSET, "data_offset");
_Static_assert(offsetof(struct ring_header, file_size) == OFF_FILE_SIZE, "file_size");
_Static_assert(offsetof(struct ring_header, header_size) == OFF_HEADER_SIZE, "header_size");
_Static_assert(offsetof(struct ring_header, attach_offset) == OFF_ATTACH_OFFSET, "attach_offset");
_Static_assert(offsetof(struct ring_header, attach_count) == OFF_ATTACH_COUNT, "attach_count");
_Static_assert(offsetof(struct ring_header, flags) == OFF_FLAGS, "flags");
#endif
#endif

TestSuite(validate, .timeout = T_TIMEOUT, .fini = t_cleanup);

/* A memfd with these contents, sealed against shrinking and growing as
 * attach_fd requires (test_attach_trust.c checks unsealed ones): what is
 * checked here is the contents. */
static int memfd_with(const void *data, size_t len, size_t size)
{
	int fd = memfd_create("shmring-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	if (len)
		cr_assert_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
	return fd;
}

static void expect_attach(int fd, int want1, int want2, const char *what)
{
	struct shmring *r = (struct shmring *)0x1;
	int rc = shmring_attach_fd(&r, fd);
	cr_assert(rc == want1 || rc == want2, "attach_fd(%s) = %d (%s), expected %d or %d", what, rc,
	          shmring_strerror(rc), want1, want2);
	/* the caller's fd is still open and ours */
	cr_assert_neq(fcntl(fd, F_GETFD), -1, "attach_fd closed the caller's fd on failure");
}

Test(validate, empty_file)
{
	int fd = memfd_with(NULL, 0, 0);
	expect_attach(fd, -EBADMSG, -EPROTO, "empty memfd");
	close(fd);
}

Test(validate, random_bytes)
{
	/* bigger than any header the format may grow to */
	static char junk[1 << 20];
	uint64_t s = 99;
	for (size_t i = 0; i < sizeof junk; i += 8) {
		uint64_t v = t_rand(&s);
		memcpy(junk + i, &v, 8);
	}
	int fd = memfd_with(junk, sizeof junk, sizeof junk);
	expect_attach(fd, -EPROTO, -EPROTO, "1 MiB of random bytes");
	close(fd);
	/* small random files: not a ring, whichever way it is put */
	for (size_t len = 1; len <= 65536; len = len * 3 + 1) {
		fd = memfd_with(junk, len, len);
		expect_attach(fd, -EPROTO, -EBADMSG, "a small random file");
		close(fd);
	}
}

Test(validate, zero_filled_file)
{
	int fd = memfd_with(NULL, 0, 3 * 4096);
	expect_attach(fd, -EPROTO, -EBADMSG, "12 KiB of zeroes");
	close(fd);
}

Test(validate, not_a_regular_file)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct shmring *r = NULL;
	int rc = shmring_attach_fd(&r, sv[0]);
	cr_assert_lt(rc, 0, "attach_fd(socket) succeeded");
	int p[2];
	cr_assert_eq(pipe(p), 0);
	rc = shmring_attach_fd(&r, p[0]);
	cr_assert_lt(rc, 0, "attach_fd(pipe) succeeded");
	int dn = open("/dev/null", O_RDWR);
	rc = shmring_attach_fd(&r, dn);
	cr_assert_lt(rc, 0, "attach_fd(/dev/null) succeeded");
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(dn);
}

Test(validate, read_only_fd_is_eacces)
{
	struct shmring *r = t_ring(4096, 0);
	char path[PATH_MAX];
	t_fd_path(shmring_fd(r), path, sizeof path);
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", shmring_fd(r));
	int ro = open(proc, O_RDONLY);
	cr_assert_geq(ro, 0, "reopen %s: %s", path, strerror(errno));
	struct shmring *r2 = NULL;
	cr_assert_eq(shmring_attach_fd(&r2, ro), -EACCES);
	close(ro);
	shmring_detach(r);
}

/* ------------------------------------------------------------ real rings,
 * corrupted through their /dev/shm file */

struct victim {
	const char *name;
	struct shmring *r;
	int fd;       /* our own O_RDWR descriptor on the ring file */
	off_t size;
};

static struct victim make_victim(const char *tag, size_t cap)
{
	struct victim v;
	v.name = t_name(tag);
	struct shmring_config cfg = { .capacity = cap };
	v.r = NULL;
	cr_assert_eq(shmring_create(&v.r, v.name, &cfg), 0);
	char path[PATH_MAX];
	t_fd_path(shmring_fd(v.r), path, sizeof path);
	cr_assert(strncmp(path, "/dev/shm/", 9) == 0, "named ring lives at %s", path);
	v.fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(v.fd, 0, "open %s: %s", path, strerror(errno));
	struct stat st;
	cr_assert_eq(fstat(v.fd, &st), 0);
	v.size = st.st_size;
	/* Our handle must not touch the file from here on. */
	shmring_detach(v.r);
	v.r = NULL;
	/* it opens fine as it is */
	struct shmring *ok = NULL;
	cr_assert_eq(shmring_open(&ok, v.name), 0);
	shmring_detach(ok);
	return v;
}

static void poke(int fd, off_t off, const void *val, size_t len)
{
	cr_assert_eq(pwrite(fd, val, len, off), (ssize_t)len, "pwrite: %s", strerror(errno));
}

static void poke64(int fd, off_t off, uint64_t v)
{
	poke(fd, off, &v, 8);
}

static void poke32(int fd, off_t off, uint32_t v)
{
	poke(fd, off, &v, 4);
}

static uint64_t peek64(int fd, off_t off)
{
	uint64_t v;
	cr_assert_eq(pread(fd, &v, 8, off), 8);
	return v;
}

/* Both ways in (by name and by fd) fail with want. */
static void expect_both(struct victim *v, int want, const char *what)
{
	struct shmring *r = NULL;
	int rc = shmring_open(&r, v->name);
	cr_assert_eq(rc, want, "open(%s) = %d (%s), expected %d (%s)", what, rc, shmring_strerror(rc),
	             want, shmring_strerror(want));
	rc = shmring_attach_fd(&r, v->fd);
	cr_assert_eq(rc, want, "attach_fd(%s) = %d (%s), expected %d", what, rc,
	             shmring_strerror(rc), want);
}

static void expect_ok(struct victim *v, const char *what)
{
	struct shmring *r = NULL;
	int rc = shmring_open(&r, v->name);
	cr_assert_eq(rc, 0, "open after restoring %s = %d", what, rc);
	cr_assert_eq(shmring_put(r, "ok", 2, 0), 0);
	char buf[4];
	cr_assert_eq(shmring_get(r, buf, sizeof buf, 0), 2);
	shmring_detach(r);
}

static void victim_done(struct victim *v)
{
	close(v->fd);
	cr_assert_eq(shmring_unlink(v->name), 0);
}

Test(validate, bad_magic_is_eproto)
{
	struct victim v = make_victim("magic", 4096);
	uint64_t magic = peek64(v.fd, OFF_MAGIC);
	cr_assert_neq(magic, 0);
	poke64(v.fd, OFF_MAGIC, magic ^ 0x100);
	expect_both(&v, -EPROTO, "flipped magic bit");
	poke(v.fd, OFF_MAGIC, "GARBAGE!", 8);
	expect_both(&v, -EPROTO, "garbage magic");
	poke64(v.fd, OFF_MAGIC, magic);
	expect_ok(&v, "magic");
	victim_done(&v);
}

Test(validate, other_abi_version_is_eprotonosupport)
{
	struct victim v = make_victim("abi", 4096);
	uint32_t abi;
	cr_assert_eq(pread(v.fd, &abi, 4, OFF_ABI), 4);
	cr_assert_eq(abi, 4, "ABI version 4 expected in a fresh ring, found %u", abi);
	poke32(v.fd, OFF_ABI, abi + 1);
	expect_both(&v, -EPROTONOSUPPORT, "ABI + 1");
	poke32(v.fd, OFF_ABI, 0);
	expect_both(&v, -EBADMSG, "ABI 0"); /* no version: corrupt (map.c) */
	poke32(v.fd, OFF_ABI, 0xffffffffu);
	expect_both(&v, -EPROTONOSUPPORT, "ABI ~0");
	poke32(v.fd, OFF_ABI, abi);
	expect_ok(&v, "ABI");
	victim_done(&v);
}

/* Kind bits shmring_create refuses (two of broadcast, overwrite and
 * redelivery; a bit it never writes) are refused at open too.  A forged
 * broadcast + redelivery header (0x14) opened, and a peek then a requeue
 * crashed the opener (a NULL op record freed; a review found it,
 * 2026-12-06). */
Test(validate, kind_bits_create_refuses_are_ebadmsg)
{
	struct victim v = make_victim("kind", 4096);
	uint32_t flags;
	cr_assert_eq(pread(v.fd, &flags, 4, OFF_FLAGS), 4);
	static const uint32_t bad[] = { 0x14, 0x0c, 0x18, 0x1c, 0x40, 0x80000000u };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char what[48];
		snprintf(what, sizeof what, "flags 0x%x", flags | bad[i]);
		poke32(v.fd, OFF_FLAGS, flags | bad[i]);
		expect_both(&v, -EBADMSG, what);
	}
	poke32(v.fd, OFF_FLAGS, flags);
	expect_ok(&v, "flags");
	victim_done(&v);
}

Test(validate, truncated_file_is_ebadmsg)
{
	struct victim v = make_victim("trunc", 16384);
	const off_t full = v.size;
	static const off_t cuts[] = { -1, -4096, -8192, -16384 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		cr_assert_eq(ftruncate(v.fd, full + cuts[i]), 0);
		char what[64];
		snprintf(what, sizeof what, "file cut by %lld bytes", (long long)-cuts[i]);
		expect_both(&v, -EBADMSG, what);
		cr_assert_eq(ftruncate(v.fd, full), 0);
	}
	/* the header alone, part of it, and the magic + ABI only */
	static const off_t sizes[] = { 4096, 16 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		cr_assert_eq(ftruncate(v.fd, sizes[i]), 0);
		char what[64];
		snprintf(what, sizeof what, "file cut to %lld bytes", (long long)sizes[i]);
		expect_both(&v, -EBADMSG, what);
	}
	victim_done(&v);
}

Test(validate, grown_file_is_ebadmsg)
{
	struct victim v = make_victim("grow", 4096);
	cr_assert_eq(ftruncate(v.fd, v.size + 4096), 0);
	expect_both(&v, -EBADMSG, "file 4 KiB too long");
	cr_assert_eq(ftruncate(v.fd, v.size * 4), 0);
	expect_both(&v, -EBADMSG, "file 4x too long");
	cr_assert_eq(ftruncate(v.fd, v.size), 0);
	expect_ok(&v, "the size");
	victim_done(&v);
}

struct geo_case {
	const char *what;
	off_t off;
	int width; /* 4 or 8 */
	uint64_t (*value)(uint64_t orig);
};

static uint64_t v_double(uint64_t o) { return o * 2; }
static uint64_t v_half(uint64_t o) { return o / 2; }
static uint64_t v_zero(uint64_t o) { (void)o; return 0; }
static uint64_t v_plus1(uint64_t o) { return o + 1; }
static uint64_t v_plus_page(uint64_t o) { return o + 4096; }
static uint64_t v_huge(uint64_t o) { (void)o; return UINT64_MAX - 4095; }
static uint64_t v_not_pow2(uint64_t o) { return o + o / 2; }
static uint64_t v_32(uint64_t o) { (void)o; return 32; }
static uint64_t v_capacity_plus1(uint64_t o) { (void)o; return 16384 + 1; }
static uint64_t v_65536(uint64_t o) { (void)o; return 65536; }
static uint64_t v_max32(uint64_t o) { (void)o; return UINT32_MAX; }

Test(validate, inconsistent_geometry_is_ebadmsg)
{
	static const struct geo_case cases[] = {
		{ "slot_size 32", OFF_SLOT_SIZE, 4, v_32 },
		{ "slot_size 0", OFF_SLOT_SIZE, 4, v_zero },
		{ "capacity doubled", OFF_CAPACITY, 8, v_double },
		{ "capacity halved", OFF_CAPACITY, 8, v_half },
		{ "capacity 0", OFF_CAPACITY, 8, v_zero },
		{ "capacity not a power of two", OFF_CAPACITY, 8, v_not_pow2 },
		{ "capacity huge", OFF_CAPACITY, 8, v_huge },
		{ "max_record > capacity", OFF_MAX_RECORD, 8, v_capacity_plus1 },
		{ "max_record huge", OFF_MAX_RECORD, 8, v_huge },
		{ "meta_offset 0", OFF_META_OFFSET, 8, v_zero },
		{ "meta_offset + 1", OFF_META_OFFSET, 8, v_plus1 },
		{ "data_offset + page", OFF_DATA_OFFSET, 8, v_plus_page },
		{ "data_offset huge", OFF_DATA_OFFSET, 8, v_huge },
		{ "file_size + page", OFF_FILE_SIZE, 8, v_plus_page },
		{ "file_size 0", OFF_FILE_SIZE, 8, v_zero },
		{ "header_size 0", OFF_HEADER_SIZE, 4, v_zero },
		{ "header_size doubled", OFF_HEADER_SIZE, 4, v_double },
		{ "attach_offset 0", OFF_ATTACH_OFFSET, 8, v_zero },
		{ "attach_offset + page", OFF_ATTACH_OFFSET, 8, v_plus_page },
		{ "attach_offset huge", OFF_ATTACH_OFFSET, 8, v_huge },
		{ "attach_count 0", OFF_ATTACH_COUNT, 4, v_zero },
		{ "attach_count + 1", OFF_ATTACH_COUNT, 4, v_plus1 },
		{ "attach_count doubled", OFF_ATTACH_COUNT, 4, v_double },
		{ "attach_count 65536", OFF_ATTACH_COUNT, 4, v_65536 },
		{ "attach_count ~0", OFF_ATTACH_COUNT, 4, v_max32 },
	};
	struct victim v = make_victim("geo", 16384);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct geo_case *c = &cases[i];
		uint64_t orig = 0;
		cr_assert_eq(pread(v.fd, &orig, (size_t)c->width, c->off), c->width);
		uint64_t nv = c->value(orig);
		poke(v.fd, c->off, &nv, (size_t)c->width);
		expect_both(&v, -EBADMSG, c->what);
		poke(v.fd, c->off, &orig, (size_t)c->width);
	}
	expect_ok(&v, "every field");
	victim_done(&v);
}

/* A peer scribbling a record's length must not make get read or write out of
 * bounds: the length is checked against the ring's own (private) geometry. */
Test(validate, corrupt_record_length_is_caught)
{
	struct victim v = make_victim("reclen", 4096);
	uint64_t meta_off = peek64(v.fd, OFF_META_OFFSET);
	cr_assert_gt(meta_off, 0);
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(&r, v.name), 0);
	cr_assert_eq(shmring_put(r, "12345678", 8, 0), 0);
	/* slot 0's meta entry: u64 seq, u32 len, ... */
	uint32_t len;
	cr_assert_eq(pread(v.fd, &len, 4, (off_t)meta_off + 8), 4);
	cr_assert_eq(len, 8, "record length not where layout.h says (found %u)", len);
	poke32(v.fd, (off_t)meta_off + 8, 0x7fffffffu);
	static char buf[1 << 16];
	ssize_t n = shmring_get(r, buf, sizeof buf, 0);
	cr_assert_eq(n, -EBADMSG, "get of a record claiming 2 GiB = %zd", n);
	struct shmring_span sp;
	n = shmring_peek(r, &sp, 0);
	cr_assert_eq(n, -EBADMSG, "peek of a record claiming 2 GiB = %zd", n);
	shmring_detach(r);
	victim_done(&v);
}
