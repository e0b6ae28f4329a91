#ifndef US_CRC32C_H
#define US_CRC32C_H
#include <stddef.h>
#include <stdint.h>
/* CRC-32C (Castagnoli). us_crc32c(us_crc32c(0, a), b) == crc of a followed by b. */
uint32_t us_crc32c(uint32_t crc, const void *data, size_t len);
#endif
