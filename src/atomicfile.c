/* atomicfile.c - temporary file + rename, so readers never see a partial
 * output.  The temporary file lives in the destination's directory so the
 * rename stays on one file system. */
#include "blackhole/atomicfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bh_status bh_afile_open(bh_afile *af, const char *path, bh_error *err)
{
    memset(af, 0, sizeof *af);
    if (!path || !*path)
        return bh_error_set(err, BH_EUSAGE, "empty output file name");
    if (strcmp(path, "-") == 0) {
        af->fp = stdout;
        return BH_OK;
    }
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp = malloc(n + 16);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        af->path = af->tmp = NULL;
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    memcpy(af->path, path, n + 1);
    /* ".name.XXXXXX" beside the destination: hidden, same directory. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(af->tmp, n + 16, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        int e = errno;
        free(af->path);
        free(af->tmp);
        af->path = af->tmp = NULL;
        return bh_error_at(err, BH_EOUTPUT, path, 0, 0, "cannot create output file: %s",
                           strerror(e));
    }
    /* mkstemp makes 0600; outputs are ordinary files (0666 & ~umask). */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    af->fp = fdopen(fd, "w");
    if (!af->fp) {
        int e = errno;
        close(fd);
        unlink(af->tmp);
        free(af->path);
        free(af->tmp);
        af->path = af->tmp = NULL;
        return bh_error_at(err, BH_EOUTPUT, path, 0, 0, "cannot open output file: %s",
                           strerror(e));
    }
    return BH_OK;
}

bh_status bh_afile_commit(bh_afile *af, bh_error *err)
{
    if (!af->fp)
        return bh_error_set(err, BH_EINTERNAL, "output file not open");
    if (!af->tmp) {
        int bad = fflush(af->fp) != 0 || ferror(af->fp);
        af->fp = NULL;
        if (bad)
            return bh_error_at(err, BH_EOUTPUT, "<stdout>", 0, 0, "write error: %s",
                               strerror(errno));
        return BH_OK;
    }
    int e = 0;
    if (fflush(af->fp) != 0 || ferror(af->fp))
        e = errno ? errno : EIO;
    else if (fsync(fileno(af->fp)) != 0 && errno != EINVAL)
        e = errno;
    if (fclose(af->fp) != 0 && !e)
        e = errno ? errno : EIO;
    af->fp = NULL;
    if (!e && rename(af->tmp, af->path) != 0)
        e = errno;
    bh_status s = BH_OK;
    if (e) {
        unlink(af->tmp);
        s = bh_error_at(err, BH_EOUTPUT, af->path, 0, 0, "cannot write output file: %s",
                        strerror(e));
    }
    free(af->tmp);
    free(af->path);
    af->tmp = af->path = NULL;
    return s;
}

void bh_afile_abort(bh_afile *af)
{
    if (af->fp && af->tmp)
        fclose(af->fp);
    if (af->tmp)
        unlink(af->tmp);
    free(af->tmp);
    free(af->path);
    af->fp = NULL;
    af->tmp = af->path = NULL;
}
