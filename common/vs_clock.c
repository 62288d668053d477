/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_clock.h"

#include <time.h>

uint64_t vs_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t vs_clock_mono_us(void)
{
    return vs_clock_mono_ns() / 1000u;
}

uint64_t vs_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
