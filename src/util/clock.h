/*
 * clock.h - the project's one clock (clock.c): monotonic seconds for every
 * elapsed time the library, the server and the CLI report or wait on, the
 * process CPU time for training's rate, and the wall-clock deadline that
 * pthread_cond_timedwait takes.
 */
#ifndef GROK_CLOCK_H
#define GROK_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock (from an arbitrary origin): differences
 * are elapsed times, unaffected by changes of the system time. */
double grok_now(void);
/* Seconds of CPU time used by this process (all its threads). */
double grok_cpu_now(void);
/* The CLOCK_REALTIME instant s seconds from now, as pthread_cond_timedwait
 * takes its deadline. */
struct timespec grok_realtime_after(double s);

#endif
