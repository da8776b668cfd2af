/* test_buf.c - reusable buffers (buf.h): capacities and string tables
 * refilled in place. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "blackhole/buf.h"

Test(buf, reserve_keeps_and_grows)
{
    size_t cap = 0;
    double *v = bh_reserve(NULL, &cap, 10, sizeof *v);
    cr_assert_not_null(v);
    cr_assert_eq(cap, 10, "a first buffer has what was asked");
    cr_assert_eq(bh_reserve(v, &cap, 7, sizeof *v), v);
    v = bh_reserve(v, &cap, 16, sizeof *v);
    cr_assert_not_null(v);
    cr_assert_eq(cap, 18, "a buffer that grew has an eighth to spare");
    v[17] = 1;   /* ASan: really allocated */
    cr_assert_eq(bh_reserve(v, &cap, 18, sizeof *v), v);
    free(v);
}

Test(buf, strings_refilled_in_place)
{
    char **v = NULL;
    size_t have = 0, room = 0;
    cr_assert(bh_reserve_strings(&v, &have, &room, 5, 4));
    cr_assert_geq(have, 5);
    cr_assert_geq(room, 4);
    for (size_t k = 0; k < have; k++)
        cr_assert_not_null(v[k], "entry %zu: a grown table has all its strings", k);
    strcpy(v[4], "abc");
    char *s4 = v[4];
    /* fewer, then as many: nothing moves */
    cr_assert(bh_reserve_strings(&v, &have, &room, 2, 4));
    cr_assert(bh_reserve_strings(&v, &have, &room, 5, 3));
    cr_assert_eq(v[4], s4);
    /* longer text: every string grows to the new room */
    size_t h0 = have;
    cr_assert(bh_reserve_strings(&v, &have, &room, 3, 40));
    cr_assert_geq(room, 40);
    cr_assert_eq(have, h0);
    for (size_t k = 0; k < have; k++)
        memset(v[k], 'x', 39);   /* ASan: each holds the room */
    /* more entries than allocated */
    cr_assert(bh_reserve_strings(&v, &have, &room, 3 * h0, 10));
    cr_assert_geq(have, 3 * h0);
    for (size_t k = 0; k < have; k++) {
        cr_assert_not_null(v[k]);
        memset(v[k], 'y', 39);
    }
    for (size_t k = 0; k < have; k++)
        free(v[k]);
    free(v);
}
