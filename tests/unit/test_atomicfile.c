/* test_atomicfile.c - outputs appear whole or not at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blackhole/atomicfile.h"
#include "testutil.h"

Test(atomicfile, commit_replaces_whole_file)
{
    char *dir = bht_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    FILE *fp = fopen(path, "w");
    fputs("old contents\n", fp);
    fclose(fp);
    bh_afile af;
    bh_error err;
    cr_assert_eq(bh_afile_open(&af, path, &err), BH_OK);
    fputs("new", af.fp);
    /* until commit the old file is intact */
    char *txt = bht_slurp(path);
    cr_assert_str_eq(txt, "old contents\n");
    free(txt);
    cr_assert_eq(bh_afile_commit(&af, &err), BH_OK);
    txt = bht_slurp(path);
    cr_assert_str_eq(txt, "new");
    free(txt);
    char *ls = NULL, cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    bht_run(cmd, &ls, NULL);
    cr_assert_str_eq(ls, "out.txt\n", "temporary files left: %s", ls);
    free(ls);
    bht_rmtree(dir);
    free(dir);
}

Test(atomicfile, abort_leaves_nothing)
{
    char *dir = bht_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    bh_afile af;
    bh_error err;
    cr_assert_eq(bh_afile_open(&af, path, &err), BH_OK);
    fputs("partial", af.fp);
    bh_afile_abort(&af);
    char *ls = NULL, cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    bht_run(cmd, &ls, NULL);
    cr_assert_str_empty(ls);
    free(ls);
    bht_rmtree(dir);
    free(dir);
}

Test(atomicfile, open_in_missing_directory_fails_with_reason)
{
    bh_afile af;
    bh_error err;
    cr_assert_eq(bh_afile_open(&af, "/nonexistent-dir/x.csv", &err), BH_EOUTPUT);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.csv"));
    cr_assert(strstr(err.msg, "No such file"));
}

Test(atomicfile, full_disk_is_an_output_error)
{
    /* /dev/full accepts the open but fails every write. */
    if (access("/dev/full", W_OK) != 0)
        cr_skip_test("no /dev/full");
    bh_afile af;
    bh_error err;
    memset(&af, 0, sizeof af);
    af.fp = fopen("/dev/full", "w");
    cr_assert(af.fp);
    af.path = strdup("/dev/full-target");
    af.tmp = strdup("/tmp/bht_never_created");
    for (int i = 0; i < 10000; i++)
        fputs("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", af.fp);
    cr_assert_eq(bh_afile_commit(&af, &err), BH_EOUTPUT);
    cr_assert(strstr(err.msg, "No space"), "%s", err.msg);
}
