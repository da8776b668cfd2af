/* status.c - error records.  Every error passes through bh_error_at(). */
#include "blackhole/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *bh_status_name(bh_status s)
{
    switch (s) {
    case BH_OK:        return "success";
    case BH_EUSAGE:    return "usage error";
    case BH_EFORMULA:  return "formula error";
    case BH_EINPUT:    return "input error";
    case BH_EDATA:     return "data error";
    case BH_ENOMEM:    return "out of memory";
    case BH_ENUMERIC:  return "numerical failure";
    case BH_ENOCONV:   return "no convergence";
    case BH_EOUTPUT:   return "output error";
    case BH_EINTERNAL: return "internal error";
    }
    return "unknown error";
}

static bh_status error_v(bh_error *err, bh_status s, const char *where,
                         size_t line, size_t column, const char *fmt,
                         va_list ap)
{
    if (!err)
        return s;
    err->status = s;
    err->line = line;
    err->column = column;
    size_t off = 0;
    int k = 0;
    if (where && line && column)
        k = snprintf(err->msg, sizeof err->msg, "%s:%zu:%zu: ", where, line, column);
    else if (where && line)
        k = snprintf(err->msg, sizeof err->msg, "%s:%zu: ", where, line);
    else if (where)
        k = snprintf(err->msg, sizeof err->msg, "%s: ", where);
    if (k > 0)
        off = (size_t)k < sizeof err->msg ? (size_t)k : sizeof err->msg - 1;
    vsnprintf(err->msg + off, sizeof err->msg - off, fmt, ap);
    return s;
}

bh_status bh_error_at(bh_error *err, bh_status s, const char *where,
                      size_t line, size_t column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bh_status r = error_v(err, s, where, line, column, fmt, ap);
    va_end(ap);
    return r;
}

bh_status bh_error_set(bh_error *err, bh_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bh_status r = error_v(err, s, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return r;
}

void bh_error_clear(bh_error *err)
{
    if (!err)
        return;
    err->status = BH_OK;
    err->line = err->column = 0;
    err->msg[0] = '\0';
}

char *bh_quote(char *buf, size_t bufsize, const char *s, size_t max)
{
    if (!buf || bufsize == 0)
        return buf;
    size_t o = 0, i = 0;
    buf[0] = '\0';
    if (!s)
        s = "(null)";
    for (; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '\n')
            strcpy(tmp, "\\n");
        else if (c == '\r')
            strcpy(tmp, "\\r");
        else if (c == '\t')
            strcpy(tmp, "\\t");
        else if (c < 0x20 || c == 0x7f)
            snprintf(tmp, sizeof tmp, "\\x%02X", c);
        else {
            tmp[0] = (char)c;
            tmp[1] = '\0';
        }
        size_t L = strlen(tmp);
        if (o + L + 4 >= bufsize)
            break;
        memcpy(buf + o, tmp, L);
        o += L;
    }
    if (s[i] && o + 3 < bufsize) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}
