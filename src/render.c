/* render.c - run gnuplot on a chart script (see render.h). */
#include "blackhole/render.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How much of gnuplot's standard error is kept for the message. */
#define RENDER_STDERR_MAX 4096

bh_status bh_render_format_parse(const char *s, bh_render_format *out, bh_error *err)
{
    if (strcasecmp(s, "png") == 0)
        *out = BH_RENDER_PNG;
    else if (strcasecmp(s, "svg") == 0)
        *out = BH_RENDER_SVG;
    else if (strcasecmp(s, "pdf") == 0)
        *out = BH_RENDER_PDF;
    else
        return bh_error_set(err, BH_EUSAGE, "--render must be png, svg or pdf, not '%s'", s);
    return BH_OK;
}

const char *bh_render_terminal(bh_render_format f)
{
    return f == BH_RENDER_SVG ? "svg" : f == BH_RENDER_PDF ? "pdfcairo" : "pngcairo";
}

const char *bh_render_extension(bh_render_format f)
{
    return f == BH_RENDER_SVG ? "svg" : f == BH_RENDER_PDF ? "pdf" : "png";
}

static int executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

char *bh_render_find(const char *program, const char *path)
{
    if (!program || !*program)
        return NULL;
    if (strchr(program, '/'))
        return executable(program) ? strdup(program) : NULL;
    if (!path)
        path = getenv("PATH");
    if (!path)
        return NULL;
    size_t plen = strlen(program);
    const char *d = path;
    for (;;) {
        const char *e = strchr(d, ':');
        size_t len = e ? (size_t)(e - d) : strlen(d);
        /* An empty PATH entry means the current directory (POSIX). */
        char *cand = malloc(len + plen + 3);
        if (!cand)
            return NULL;
        if (len == 0)
            snprintf(cand, plen + 3, "./%s", program);
        else
            snprintf(cand, len + plen + 2, "%.*s/%s", (int)len, d, program);
        if (executable(cand))
            return cand;
        free(cand);
        if (!e)
            return NULL;
        d = e + 1;
    }
}

/* Append s to buf as a single-quoted gnuplot string; 0 when s holds a
 * control character (a path like that cannot be passed safely). */
static int quote_into(char *buf, size_t size, const char *s)
{
    size_t k = strlen(buf);
    if (k + 1 >= size)
        return 0;
    buf[k++] = '\'';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c == 0x7f)
            return 0;
        if (k + 8 >= size)
            return 0;
        if (*c == '\'') {
            /* not '': gnuplot 5.4 mis-scans doubled quotes (see plot.c) */
            memcpy(buf + k, "'.\"'\".'", 7);
            k += 7;
            continue;
        }
        buf[k++] = (char)*c;
    }
    if (k + 2 >= size)
        return 0;
    buf[k++] = '\'';
    buf[k] = '\0';
    return 1;
}

/* gnuplot's diagnostics as one line: blank runs and newlines collapsed. */
static void one_line(char *s)
{
    char *w = s;
    int space = 1;
    for (char *r = s; *r; r++) {
        unsigned char c = (unsigned char)*r;
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            if (!space)
                *w++ = ' ';
            space = 1;
        } else if (c < 0x20) {
            continue;
        } else {
            *w++ = (char)c;
            space = 0;
        }
    }
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

bh_status bh_render_run(const char *gnuplot, const char *script, bh_render_format fmt,
                        size_t width, size_t height, const char *image, bh_error *err)
{
    if (!width)
        width = 900;
    if (!height)
        height = 600;
    size_t ilen = strlen(image);
    char *tmp = malloc(ilen + 16);
    if (!tmp)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    /* Beside the destination, so the final rename stays on one file system. */
    snprintf(tmp, ilen + 16, "%s.tmpXXXXXX", image);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        bh_status s = bh_error_set(err, BH_EOUTPUT, "cannot create '%s': %s", image,
                                   strerror(errno));
        free(tmp);
        return s;
    }
    /* mkstemp makes the file private; an image is an ordinary output. */
    (void)fchmod(fd, 0644);
    close(fd);

    char setup[8192];
    snprintf(setup, sizeof setup, "bh_term='%s'; bh_width=%zu; bh_height=%zu; bh_output=",
             bh_render_terminal(fmt), width, height);
    if (!quote_into(setup, sizeof setup, tmp)) {
        unlink(tmp);
        free(tmp);
        return bh_error_set(err, BH_EOUTPUT,
                            "cannot render to '%s': the path is too long or holds control "
                            "characters", image);
    }

    int pfd[2];
    if (pipe(pfd) != 0) {
        bh_status s = bh_error_set(err, BH_EOUTPUT, "cannot run gnuplot: pipe: %s",
                                   strerror(errno));
        unlink(tmp);
        free(tmp);
        return s;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
    char *argv[] = {(char *)gnuplot, "-e", setup, (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        unlink(tmp);
        free(tmp);
        return bh_error_set(err, BH_EOUTPUT, "cannot run '%s': %s", gnuplot, strerror(rc));
    }
    char msg[RENDER_STDERR_MAX];
    size_t n = 0;
    for (;;) {
        char chunk[1024];
        ssize_t r = read(pfd[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (take > sizeof msg - 1 - n)
            take = sizeof msg - 1 - n;
        memcpy(msg + n, chunk, take);
        n += take;
    }
    msg[n] = '\0';
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            status = -1;
            break;
        }
    one_line(msg);

    bh_status s = BH_OK;
    struct stat st;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (status != -1 && WIFSIGNALED(status))
            s = bh_error_set(err, BH_EOUTPUT, "gnuplot was killed by signal %d rendering '%s'%s%s",
                             WTERMSIG(status), image, n ? ": " : "", msg);
        else
            s = bh_error_set(err, BH_EOUTPUT, "gnuplot failed rendering '%s': %s", image,
                             n ? msg : "(no message)");
    } else if (stat(tmp, &st) != 0 || st.st_size == 0) {
        s = bh_error_set(err, BH_EOUTPUT, "gnuplot wrote nothing for '%s'%s%s", image,
                         n ? ": " : "", msg);
    } else {
        /* Make the image durable before it replaces the destination. */
        int f = open(tmp, O_RDONLY);
        if (f >= 0) {
            (void)fsync(f);
            close(f);
        }
        if (rename(tmp, image) != 0)
            s = bh_error_set(err, BH_EOUTPUT, "cannot write '%s': %s", image, strerror(errno));
    }
    if (s != BH_OK)
        unlink(tmp);
    free(tmp);
    return s;
}
