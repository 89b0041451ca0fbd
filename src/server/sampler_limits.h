/*
 * sampler_limits.h - the ranges a sampler setting may take, one definition
 * for both places that read them from outside: the server's request parser
 * (api.c) and the grok command's flags (cli/options.c). The same value is
 * then accepted, or refused, by both.
 */
#ifndef GROK_SAMPLER_LIMITS_H
#define GROK_SAMPLER_LIMITS_H

#define GROK_TEMPERATURE_MIN 0.0
#define GROK_TEMPERATURE_MAX 2.0
#define GROK_TOP_P_MIN 0.0
#define GROK_TOP_P_MAX 1.0
#define GROK_TOP_K_MIN 0
#define GROK_TOP_K_MAX 1000000000
#define GROK_MIN_P_MIN 0.0
#define GROK_MIN_P_MAX 1.0
#define GROK_PENALTY_MIN -2.0 /* presence and frequency penalties */
#define GROK_PENALTY_MAX 2.0
#define GROK_REPEAT_PENALTY_MIN 0.01
#define GROK_REPEAT_PENALTY_MAX 100.0
/* Seeds: any 64-bit integer, signed or not; a negative one is taken modulo
 * 2^64 (as the two's complement of its int64). */
#define GROK_SEED_MIN (-9223372036854775807LL - 1)
#define GROK_SEED_MAX 18446744073709551615ULL

#endif
