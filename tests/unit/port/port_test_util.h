/* Helpers shared by the port tests: build frames, collect received frames. */
#ifndef PORT_TEST_UTIL_H
#define PORT_TEST_UTIL_H

#include "mv/port.h"

#include <stddef.h>
#include <stdint.h>

struct rx_copy {
    uint8_t data[MV_ETH_MAX_FRAME];
    uint32_t len;
    uint32_t conn;
};

/* dst, src, EtherType, then payload bytes (seq in the first 4, the rest a pattern). */
size_t build_frame(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], uint16_t ethertype,
                   uint32_t seq, size_t len);
/* true if the frame's payload matches what build_frame(seq, len) wrote (len >= 18). */
int check_frame(const uint8_t *buf, size_t len, uint32_t seq);
/* Receives until want frames were copied into out or timeout_ms passed. Returns the count. */
unsigned collect_frames(struct mv_port *port, struct rx_copy *out, unsigned want, int timeout_ms);

#endif
