/*
 * csv.c -- streaming RFC 4180 reader; the contract is in csv.h.
 *
 * How it works: input is read with fread into a 64 KiB buffer and fed byte
 * by byte to a four-state machine (START of field, UNQUOTED, QUOTED, QQ =
 * just saw a quote inside a quoted field).  Field bytes are appended to one
 * record buffer, each field followed by a NUL, so csv_field can hand out
 * pointers into it without copying.  The record buffer grows by doubling up
 * to max_line_bytes + 2 (separators become NULs, so unquoted content plus
 * terminators never exceed the raw byte count plus one).
 *
 * Invariants: rec_used <= rec_cap; nfields <= fcap; every recorded field
 * start points at a NUL-terminated string inside rec.  `line` is the
 * physical line of the next unread byte (1-based), counted on every LF
 * consumed, including LFs inside quotes and LFs skipped after an error.
 */
#include "csv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CSV_IBUF 65536

enum s_state { S_START, S_UNQUOTED, S_QUOTED, S_QQ };

struct csv_reader {
    FILE *f;
    char *source;
    size_t max_line;

    unsigned char ibuf[CSV_IBUF];   /* read-ahead */
    size_t ipos, ilen;
    bool eof;                       /* fread reported end or error */
    bool ioerr;
    bool bom_checked;

    char *rec;                      /* field bytes, each NUL-terminated */
    size_t rec_used, rec_cap;
    size_t *fstart, *flen;          /* per field: offset in rec, length */
    size_t nfields, fcap;

    long line;                      /* physical line of the next byte */
    long rec_line;                  /* line where the current record began */
    bool done, truncated, skip_line;
};

csv_reader *csv_new(FILE *f, const char *source, size_t max_line_bytes)
{
    if (max_line_bytes == 0)
        max_line_bytes = CSV_DEFAULT_MAX_LINE;
    if (!f || max_line_bytes > CSV_MAX_MAX_LINE)
        return NULL;
    csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->f = f;
    r->max_line = max_line_bytes;
    r->source = strdup(source ? source : "<csv>");
    r->rec_cap = 4096 < max_line_bytes + 2 ? 4096 : max_line_bytes + 2;
    r->rec = malloc(r->rec_cap);
    r->fcap = 16;
    r->fstart = malloc(r->fcap * sizeof *r->fstart);
    r->flen = malloc(r->fcap * sizeof *r->flen);
    r->line = 1;
    if (!r->source || !r->rec || !r->fstart || !r->flen)
        csv_destroy(&r);
    return r;
}

void csv_destroy(csv_reader **rp)
{
    if (!rp || !*rp)
        return;
    csv_reader *r = *rp;
    free(r->source);
    free(r->rec);
    free(r->fstart);
    free(r->flen);
    free(r);
    *rp = NULL;
}

/* Next input byte, or -1 at end of input (r->ioerr tells a read error). */
static inline int s_getc(csv_reader *r)
{
    if (r->ipos < r->ilen)
        return r->ibuf[r->ipos++];
    if (r->eof)
        return -1;
    r->ilen = fread(r->ibuf, 1, sizeof r->ibuf, r->f);
    r->ipos = 0;
    if (r->ilen < sizeof r->ibuf) {
        r->eof = true;
        r->ioerr = ferror(r->f) != 0;
    }
    if (r->ilen == 0)
        return -1;
    return r->ibuf[r->ipos++];
}

/* Peeks at the next byte without consuming it (-1 at end). */
static int s_peek(csv_reader *r)
{
    int c = s_getc(r);
    if (c >= 0)
        r->ipos--;
    return c;
}

/* Skips a UTF-8 byte order mark at the very start of the input. */
static void s_skip_bom(csv_reader *r)
{
    r->bom_checked = true;
    if (s_peek(r) != 0xEF)
        return;
    /* The whole BOM is within the first buffer unless the file is shorter. */
    if (r->ilen - r->ipos >= 3 && r->ibuf[r->ipos + 1] == 0xBB && r->ibuf[r->ipos + 2] == 0xBF)
        r->ipos += 3;
}

static pcf_rc s_append(csv_reader *r, char c)
{
    if (r->rec_used == r->rec_cap) {
        size_t cap = r->rec_cap * 2;
        if (cap > r->max_line + 2)
            cap = r->max_line + 2;
        if (cap <= r->rec_cap)
            return PCF_ERR_LIMIT;   /* cannot happen: raw bytes are checked first */
        char *p = realloc(r->rec, cap);
        if (!p)
            return PCF_ERR_NOMEM;
        r->rec = p;
        r->rec_cap = cap;
    }
    r->rec[r->rec_used++] = c;
    return PCF_OK;
}

/* Terminates the field being built (which began at offset `start`). */
static pcf_rc s_end_field(csv_reader *r, size_t start)
{
    pcf_rc rc = s_append(r, '\0');
    if (rc != PCF_OK)
        return rc;
    if (r->nfields == r->fcap) {
        size_t cap = r->fcap * 2;
        size_t *s = realloc(r->fstart, cap * sizeof *s);
        if (!s)
            return PCF_ERR_NOMEM;
        r->fstart = s;
        size_t *l = realloc(r->flen, cap * sizeof *l);
        if (!l)
            return PCF_ERR_NOMEM;
        r->flen = l;
        r->fcap = cap;
    }
    r->fstart[r->nfields] = start;
    r->flen[r->nfields] = r->rec_used - 1 - start;
    r->nfields++;
    return PCF_OK;
}

/* Reports an error for the current line and arranges resynchronisation. */
static pcf_rc s_fail(csv_reader *r, pcf_error *err, pcf_rc code, long line, const char *why)
{
    r->nfields = 0;
    r->skip_line = true;
    return pcf_error_set(err, code, "%s:%ld: %s", r->source, line, why);
}

static void s_skip_to_newline(csv_reader *r)
{
    int c;
    while ((c = s_getc(r)) >= 0) {
        if (c == '\n') {
            r->line++;
            return;
        }
    }
}

/* A CR outside quotes must be the first half of CRLF. */
static bool s_crlf(csv_reader *r)
{
    if (s_peek(r) != '\n')
        return false;
    (void)s_getc(r);
    return true;
}

pcf_rc csv_next(csv_reader *r, pcf_error *err)
{
    r->nfields = 0;
    r->rec_used = 0;
    r->truncated = false;
    if (r->done)
        return PCF_OK;
    if (!r->bom_checked)
        s_skip_bom(r);
    if (r->skip_line) {
        r->skip_line = false;
        s_skip_to_newline(r);
    }
    r->rec_line = r->line;

    enum s_state st = S_START;
    size_t start = 0, raw = 0;
    pcf_rc rc = PCF_OK;
    for (;;) {
        int c = s_getc(r);
        if (c < 0) {
            if (r->ioerr) {
                r->done = true;
                r->nfields = 0;
                return pcf_error_set(err, PCF_ERR_IO, "%s:%ld: read error", r->source, r->line);
            }
            if (st == S_START && raw == 0) {        /* clean end of file */
                r->done = true;
                return PCF_OK;
            }
            if (st == S_QUOTED) {
                r->done = true;
                r->nfields = 0;
                return pcf_error_set(err, PCF_ERR_PARSE,
                                     "%s:%ld: unterminated quoted field at end of file",
                                     r->source, r->rec_line);
            }
            r->truncated = true;
            return s_end_field(r, start);
        }
        if (++raw > r->max_line) {
            char why[96];
            snprintf(why, sizeof why, "record longer than %zu bytes", r->max_line);
            return s_fail(r, err, PCF_ERR_LIMIT, r->rec_line, why);
        }
        if (c == 0)
            return s_fail(r, err, PCF_ERR_PARSE, r->line, "embedded NUL byte");

        switch (st) {
        case S_START:
        case S_UNQUOTED:
            if (c == ',') {
                if ((rc = s_end_field(r, start)) != PCF_OK)
                    return rc;
                start = r->rec_used;
                st = S_START;
            } else if (c == '\n' || (c == '\r' && s_crlf(r))) {
                r->line++;
                if (st == S_START && r->nfields == 0 && raw <= 2)
                    return PCF_OK;                  /* blank line */
                return s_end_field(r, start);
            } else if (c == '\r') {
                return s_fail(r, err, PCF_ERR_PARSE, r->line, "carriage return not followed by line feed");
            } else if (c == '"') {
                if (st == S_UNQUOTED)
                    return s_fail(r, err, PCF_ERR_PARSE, r->line, "stray quote inside unquoted field");
                st = S_QUOTED;
            } else {
                if ((rc = s_append(r, (char)c)) != PCF_OK)
                    return rc;
                st = S_UNQUOTED;
            }
            break;
        case S_QUOTED:
            if (c == '"') {
                st = S_QQ;
            } else {
                if (c == '\n')
                    r->line++;
                if ((rc = s_append(r, (char)c)) != PCF_OK)
                    return rc;
            }
            break;
        case S_QQ:
            if (c == '"') {
                if ((rc = s_append(r, '"')) != PCF_OK)
                    return rc;
                st = S_QUOTED;
            } else if (c == ',') {
                if ((rc = s_end_field(r, start)) != PCF_OK)
                    return rc;
                start = r->rec_used;
                st = S_START;
            } else if (c == '\n' || (c == '\r' && s_crlf(r))) {
                r->line++;
                return s_end_field(r, start);
            } else {
                return s_fail(r, err, PCF_ERR_PARSE, r->line, "stray text after closing quote");
            }
            break;
        }
    }
}

bool csv_done(const csv_reader *r) { return r->done; }
size_t csv_count(const csv_reader *r) { return r->nfields; }
long csv_line(const csv_reader *r) { return r->rec_line; }
bool csv_truncated(const csv_reader *r) { return r->truncated; }
const char *csv_source(const csv_reader *r) { return r->source; }

const char *csv_field(const csv_reader *r, size_t i)
{
    return i < r->nfields ? r->rec + r->fstart[i] : NULL;
}

size_t csv_field_len(const csv_reader *r, size_t i)
{
    return i < r->nfields ? r->flen[i] : 0;
}

/* Compares a header field with an expected name, ignoring ASCII case and
 * surrounding spaces. */
static bool s_name_eq(const char *field, size_t len, const char *name)
{
    while (len > 0 && (*field == ' ' || *field == '\t')) {
        field++;
        len--;
    }
    while (len > 0 && (field[len - 1] == ' ' || field[len - 1] == '\t'))
        len--;
    return strlen(name) == len && strncasecmp(field, name, len) == 0;
}

pcf_rc csv_header(csv_reader *r, const char *const names[], size_t n, pcf_error *err)
{
    pcf_rc rc = csv_next(r, err);
    if (rc != PCF_OK)
        return rc;
    if (csv_done(r))
        return pcf_error_set(err, PCF_ERR_PARSE, "%s:%ld: empty file (no header)", r->source, r->line);
    bool ok = csv_count(r) == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = s_name_eq(csv_field(r, i), csv_field_len(r, i), names[i]);
    if (ok)
        return PCF_OK;
    char want[256];
    size_t used = 0;
    want[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof want; i++) {
        int k = snprintf(want + used, sizeof want - used, "%s%s", i ? "," : "", names[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return pcf_error_set(err, PCF_ERR_PARSE, "%s:%ld: wrong header: expected '%s' (%zu columns), got %zu columns",
                         r->source, r->rec_line, want, n, csv_count(r));
}
