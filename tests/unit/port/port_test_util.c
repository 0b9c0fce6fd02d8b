#include "port_test_util.h"

#include "mv/util.h"

#include <string.h>

size_t build_frame(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], uint16_t ethertype,
                   uint32_t seq, size_t len)
{
    memcpy(buf, dst, 6);
    memcpy(buf + 6, src, 6);
    buf[12] = (uint8_t)(ethertype >> 8);
    buf[13] = (uint8_t)ethertype;
    if (len >= 18) {
        buf[14] = (uint8_t)(seq >> 24);
        buf[15] = (uint8_t)(seq >> 16);
        buf[16] = (uint8_t)(seq >> 8);
        buf[17] = (uint8_t)seq;
    }
    for (size_t i = 18; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + seq);
    return len;
}

int check_frame(const uint8_t *buf, size_t len, uint32_t seq)
{
    if (len < 18)
        return 0;
    if ((uint32_t)(buf[14] << 24 | buf[15] << 16 | buf[16] << 8 | buf[17]) != seq)
        return 0;
    for (size_t i = 18; i < len; i++)
        if (buf[i] != (uint8_t)(i * 7 + seq))
            return 0;
    return 1;
}

unsigned collect_frames(struct mv_port *port, struct rx_copy *out, unsigned want, int timeout_ms)
{
    uint64_t deadline = mv_now_ns() + (uint64_t)timeout_ms * 1000000u;
    struct mv_frame frames[64];
    unsigned got = 0;

    while (got < want) {
        uint64_t now = mv_now_ns();
        int n;

        if (now >= deadline)
            break;
        if (mv_port_wait(port, (int)((deadline - now) / 1000000u) + 1) <= 0)
            continue;
        n = mv_port_recv(port, frames, MV_ARRAY_SIZE(frames));
        for (int i = 0; i < n && got < want; i++) {
            memcpy(out[got].data, frames[i].data, frames[i].len);
            out[got].len = frames[i].len;
            out[got].conn = frames[i].conn;
            got++;
        }
        mv_port_recv_done(port);
        if (n < 0)
            break;
    }
    return got;
}
