/* atomicfile.c - temporary file + rename, so readers never see a partial
 * output.  The temporary file lives in the destination's directory so the
 * rename stays on one file system. */
#include "blackhole/atomicfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file a chain of symbolic links ends at (malloc'ed), or NULL when
 * path is no link or the chain cannot be followed.  realpath() is not in
 * the POSIX base this project builds against; readlink() is. */
static char *follow_links(const char *path)
{
    char *cur = NULL;
    const char *p = path;
    struct stat sb;
    for (int hops = 0; hops < 40 && lstat(p, &sb) == 0 && S_ISLNK(sb.st_mode); hops++) {
        size_t cap = (size_t)sb.st_size + 1 > 256 ? (size_t)sb.st_size + 1 : 256;
        char *target = malloc(cap);
        ssize_t len = target ? readlink(p, target, cap - 1) : -1;
        if (len < 0) {
            free(target);
            free(cur);
            return NULL;
        }
        target[len] = '\0';
        if (target[0] != '/') {
            /* Relative to the link's directory. */
            const char *slash = strrchr(p, '/');
            size_t dl = slash ? (size_t)(slash - p) + 1 : 0;
            char *joined = malloc(dl + (size_t)len + 1);
            if (!joined) {
                free(target);
                free(cur);
                return NULL;
            }
            memcpy(joined, p, dl);
            memcpy(joined + dl, target, (size_t)len + 1);
            free(target);
            target = joined;
        }
        free(cur);
        p = cur = target;
    }
    return cur;
}

bh_status bh_afile_open(bh_afile *af, const char *path, bh_error *err)
{
    memset(af, 0, sizeof *af);
    if (!path || !*path)
        return bh_error_set(err, BH_EUSAGE, "empty output file name");
    if (strcmp(path, "-") == 0) {
        af->fp = stdout;
        return BH_OK;
    }
    /* A destination that exists but is no regular file (/dev/null,
     * /dev/full, /dev/stdout, a FIFO) is written in place: renaming a
     * temporary file over it would replace the device node or the link
     * (as root, `-o /dev/null` would destroy /dev/null).  Errors still
     * surface at commit.  A directory fails here, before any work. */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        if (S_ISDIR(sb.st_mode))
            return bh_error_at(err, BH_EOUTPUT, path, 0, 0,
                               "cannot write output file: it is a directory");
        af->path = malloc(strlen(path) + 1);
        if (!af->path)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        strcpy(af->path, path);
        af->fp = fopen(path, "w");
        if (!af->fp) {
            int e = errno;
            free(af->path);
            af->path = NULL;
            return bh_error_at(err, BH_EOUTPUT, path, 0, 0,
                               "cannot open output file: %s", strerror(e));
        }
        return BH_OK;
    }
    /* A symbolic link to a regular file: replace the file it points to,
     * not the link. */
    char *real = follow_links(path);
    if (real)
        path = real;
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp = malloc(n + 16);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        free(real);
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
        bh_status s = bh_error_at(err, BH_EOUTPUT, path, 0, 0,
                                  "cannot create output file: %s", strerror(e));
        free(real);
        return s;
    }
    free(real);
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
        /* stdout (path NULL), or a non-regular file written in place. */
        int bad = fflush(af->fp) != 0 || ferror(af->fp);
        int e = errno ? errno : EIO;
        if (af->path && fclose(af->fp) != 0 && !bad) {
            bad = 1;
            e = errno ? errno : EIO;
        }
        af->fp = NULL;
        bh_status s = BH_OK;
        if (bad)
            s = bh_error_at(err, BH_EOUTPUT, af->path ? af->path : "<stdout>", 0, 0,
                            "write error: %s", strerror(e));
        free(af->path);
        af->path = NULL;
        return s;
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
    if (af->fp && (af->tmp || af->path))
        fclose(af->fp);
    if (af->tmp)
        unlink(af->tmp);
    free(af->tmp);
    free(af->path);
    af->fp = NULL;
    af->tmp = af->path = NULL;
}
