/* sha256.h - SHA-256 (FIPS 180-4), to identify data files in reports. */
#ifndef BH_SHA256_H
#define BH_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include "blackhole/status.h"

typedef struct {
    uint32_t h[8];
    uint64_t len;             /* bytes so far */
    unsigned char buf[64];
    size_t nbuf;
} bh_sha256;

void bh_sha256_init(bh_sha256 *c);
void bh_sha256_update(bh_sha256 *c, const void *data, size_t n);
/* Finish: 32-byte digest, and its lowercase hex (65 bytes incl. NUL). */
void bh_sha256_final(bh_sha256 *c, unsigned char digest[32], char hex[65]);

/* Hash a whole file into hex (BH_EINPUT naming the file on failure). */
bh_status bh_sha256_file(const char *path, char hex[65], bh_error *err);

#endif
