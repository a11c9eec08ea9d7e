/* deadline.c - absolute deadlines on CLOCK_MONOTONIC. */
#include "wait.h"

void shmring__deadline_init(struct deadline *dl, int64_t timeout_ns)
{
	dl->forever = timeout_ns < 0;
	if (dl->forever)
		return;
	clock_gettime(CLOCK_MONOTONIC, &dl->at);
	int64_t sec = timeout_ns / 1000000000;
	long nsec = (long)(timeout_ns % 1000000000);
	if (sec > INT32_MAX) {  /* centuries: treat as forever */
		dl->forever = true;
		return;
	}
	dl->at.tv_sec += (time_t)sec;
	dl->at.tv_nsec += nsec;
	if (dl->at.tv_nsec >= 1000000000) {
		dl->at.tv_sec++;
		dl->at.tv_nsec -= 1000000000;
	}
}

bool shmring__deadline_passed(const struct deadline *dl)
{
	if (dl->forever)
		return false;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > dl->at.tv_sec ||
	       (now.tv_sec == dl->at.tv_sec && now.tv_nsec >= dl->at.tv_nsec);
}
