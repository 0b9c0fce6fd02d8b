/* Small helpers every component needs: time, strict number parsing, MAC addresses. */
#ifndef MV_UTIL_H
#define MV_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MV_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MV_MAX(a, b)     ((a) > (b) ? (a) : (b))

uint64_t mv_now_ns(void);      /* CLOCK_MONOTONIC */
uint64_t mv_realtime_ns(void); /* CLOCK_REALTIME */
void mv_sleep_ns(uint64_t ns);

/* Whole-string parses: no trailing garbage, no overflow, no sign surprises. 0 or -EINVAL/-ERANGE.
 */
int mv_parse_u64(const char *s, uint64_t *out);
int mv_parse_u32(const char *s, uint32_t *out);
int mv_parse_int(const char *s, int *out);
int mv_parse_bool(const char *s, bool *out); /* true/false, yes/no, on/off, 1/0 */
/* "64M", "2G", "4096", "1k": binary multiples. */
int mv_parse_size(const char *s, uint64_t *out);

#define MV_MAC_LEN     6
#define MV_MAC_STR_LEN 18 /* "aa:bb:cc:dd:ee:ff" + NUL */
int mv_mac_parse(const char *s, uint8_t mac[MV_MAC_LEN]);
void mv_mac_format(const uint8_t mac[MV_MAC_LEN], char out[MV_MAC_STR_LEN]);
bool mv_mac_is_broadcast(const uint8_t mac[MV_MAC_LEN]);

/* Reads a whole small file (keys, sysfs values). Returns bytes read or -errno; NUL-terminates. */
long mv_read_file(const char *path, char *buf, size_t cap);

#endif
