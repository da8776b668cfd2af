/* test_golden.c - the program's output layout, pinned by golden files
 * (tests/cli/golden/cases.txt says how they are made). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

Test(golden, outputs_match)
{
    FILE *fp = fopen("tests/cli/golden/cases.txt", "r");
    cr_assert(fp, "tests/cli/golden/cases.txt missing");
    char line[2048];
    size_t ncase = 0;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *bar = strchr(line, '|');
        cr_assert(bar, "bad line in cases.txt: %s", line);
        *bar = '\0';
        char cmd[4096], path[2200];
        snprintf(cmd, sizeof cmd, "%s %s", bht_bin(), bar + 1);
        snprintf(path, sizeof path, "tests/cli/golden/%s.out", line);
        char *out = NULL;
        int rc = bht_run(cmd, &out, NULL);
        char *want = bht_slurp(path);
        cr_assert(want, "golden file %s missing (make golden)", path);
        cr_expect_str_eq(out, want, "%s: output differs from %s (rc %d)", line, path, rc);
        free(out);
        free(want);
        ncase++;
    }
    fclose(fp);
    cr_assert_gt(ncase, 5);
}
