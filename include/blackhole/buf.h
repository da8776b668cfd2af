/* buf.h - reusable buffers for workspaces kept across calls. */
#ifndef BH_BUF_H
#define BH_BUF_H

#include <stddef.h>

/* A buffer of at least len (>= 1) elements of size sz: buf itself when its
 * capacity *cap suffices, else a new one (buf is freed; the contents are
 * not carried over; *cap updated); NULL when out of memory (*cap = 0). */
void *bh_reserve(void *buf, size_t *cap, size_t len, size_t sz);

#endif
