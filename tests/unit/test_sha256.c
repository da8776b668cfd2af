/* test_sha256.c - against the FIPS 180-4 / NIST example vectors. */
#include <string.h>

#include "blackhole/sha256.h"
#include "testutil.h"

static void check(const char *msg, size_t reps, const char *want)
{
    bh_sha256 c;
    char hex[65];
    bh_sha256_init(&c);
    for (size_t i = 0; i < reps; i++)
        bh_sha256_update(&c, msg, strlen(msg));
    bh_sha256_final(&c, NULL, hex);
    cr_assert_str_eq(hex, want, "sha256 of '%s' x %zu", msg, reps);
}

/* NIST CSRC "SHA256.pdf" examples and the one-million-'a' vector. */
Test(sha256, nist_vectors)
{
    check("abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check("a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
