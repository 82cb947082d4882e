/* skynet_timer.h: timeouts and clocks. */
#ifndef SKYNET_TIMER_H
#define SKYNET_TIMER_H

#include <stdint.h>

/* After time centiseconds, handle gets an empty PTYPE_RESPONSE with session (at once
 * for time <= 0). Returns session, or -1 when it is due at once and handle is gone. */
int skynet_timeout(uint32_t handle, int time, int session);
/* The node's start, in Unix seconds. */
uint32_t skynet_starttime(void);
/* This thread's CPU time, in microseconds. */
uint64_t skynet_thread_time(void);

#endif
