/*
 * clock.c - the clocks of clock.h.
 */
#include "util/clock.h"

static double seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double grok_now(void) { return seconds(CLOCK_MONOTONIC); }

double grok_cpu_now(void) { return seconds(CLOCK_PROCESS_CPUTIME_ID); }

struct timespec grok_realtime_after(double s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const long long ns = (long long)(s * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec += (long)(ns % 1000000000LL);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
