/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_clock.h -- the process clocks. Pure logic (placement, peering, the raft
 * state machine) never calls these: it takes time as an input (STYLE B17).
 * Only backends and the event loop glue read the clock.
 */
#ifndef VS_CLOCK_H
#define VS_CLOCK_H

#include <stdint.h>

/* Monotonic microseconds since an arbitrary start. */
uint64_t vs_clock_mono_us(void);
/* Monotonic nanoseconds, for latency measurement. */
uint64_t vs_clock_mono_ns(void);
/* Wall-clock milliseconds since the Unix epoch (for stats and display only). */
uint64_t vs_clock_wall_ms(void);

#endif /* VS_CLOCK_H */
