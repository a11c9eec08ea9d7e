/* shared.c - stress_procs: the shared accounting region, the parent's globals and violation() (stress_procs.h). */
#include "../stress_procs.h"

const char *const pop_name[N_PO] = { "put", "putv", "put_many", "reserve", "commit",
					    "abort", "oversize" };
const char *const pstate_name[] = { "idle", "in call", "reserved", "recording" };
const char *const cop_name[N_CO] = { "get", "get(small)", "get_many", "peek", "next_len" };
const char *const cstate_name[] = { "idle", "in call", "next_len", "holding a peek",
					   "releasing", "recording" };

struct opts opt;
struct shmring *ring;
size_t max_record;
struct shared *sh;
uint64_t ids_cap;		/* ids available (a multiple of BLOCK_IDS) */
_Atomic uint32_t *owner;		/* per block: producer incarnation + 1 */
_Atomic uint64_t *committed;	/* per id: one bit */
_Atomic uint8_t *tags;		/* per id: the consumer tag that recorded it */
const char *who = "parent";	/* for messages */

void violation(const char *fmt, ...)
{
	va_list ap;

	uint64_t nth = atomic_fetch_add(&sh->violations, 1);
	if (nth < 30) {
		char msg[512];
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		fprintf(stderr, NAME ": VIOLATION (%s): %s\n", who, msg);
		if (nth == 0) {	/* "<who>: <msg>", cut to fit */
			size_t w = strlen(who), room = sizeof sh->first_violation;
			if (w + 2 < room) {
				memcpy(sh->first_violation, who, w);
				memcpy(sh->first_violation + w, ": ", 2);
				size_t m = strlen(msg) < room - w - 3 ? strlen(msg) : room - w - 3;
				memcpy(sh->first_violation + w + 2, msg, m);
				sh->first_violation[w + 2 + m] = '\0';
			}
		}
	}
}

void *map_shared(size_t size)	/* zeroed, committed only as touched */
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, NAME ": FAIL mmap of %zu bytes: %s\n", size, strerror(errno));
		exit(2);
	}
	return p;
}

uint32_t stamp_now(void)		/* microseconds since the start, wrapping */
{
	return (uint32_t)((now_ns() - sh->t0_ns) / 1000);
}
