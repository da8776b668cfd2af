/* buf.c - reusable buffers (buf.h). */
#include "blackhole/buf.h"

#include <stdlib.h>

void *bh_reserve(void *buf, size_t *cap, size_t len, size_t sz)
{
    if (len == 0)
        len = 1;
    if (buf && *cap >= len)
        return buf;
    /* A buffer too small once (sizes that vary: drawn row counts) gets
     * room to spare, so that it seldom has to grow again. */
    if (buf && len < (size_t)-1 / 9)
        len += len / 8;
    free(buf);
    buf = malloc(len * sz);
    *cap = buf ? len : 0;
    return buf;
}

int bh_reserve_strings(char ***v, size_t *have, size_t *room, size_t n, size_t need)
{
    if (need > *room) {
        /* every string, kept ones too, gets the new room, so that any
         * entry can later take any text of up to room - 1 characters */
        size_t nr = need + 8;
        for (size_t k = 0; k < *have; k++) {
            if (!(*v)[k])
                continue;
            char *t = realloc((*v)[k], nr);
            if (!t)
                return 0;
            (*v)[k] = t;
        }
        *room = nr;
    }
    size_t upto = n;
    if (n > *have || !*v) {
        size_t nc = n + n / 8 + 1;
        char **t = realloc(*v, nc * sizeof *t);
        if (!t)
            return 0;
        for (size_t k = *have; k < nc; k++)
            t[k] = NULL;
        *v = t;
        *have = nc;
        upto = nc;   /* the spare entries get their strings now as well */
    }
    for (size_t k = 0; k < upto; k++)
        if (!(*v)[k] && !((*v)[k] = malloc(*room)))
            return 0;
    return 1;
}
