/* buf.c - reusable buffers (buf.h). */
#include "blackhole/buf.h"

#include <stdlib.h>

void *bh_reserve(void *buf, size_t *cap, size_t len, size_t sz)
{
    if (len == 0)
        len = 1;
    if (buf && *cap >= len)
        return buf;
    free(buf);
    buf = malloc(len * sz);
    *cap = buf ? len : 0;
    return buf;
}
