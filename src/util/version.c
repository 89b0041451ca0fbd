/*
 * version.c - the library's version, for programs that run against a
 * libgrok.so other than the one their grok.h came with.
 */
#include "grok.h"

const char *grok_version(void) { return GROK_VERSION; }
