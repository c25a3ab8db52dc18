/*
 * note.c -- structured notes of the ingest library code; see note.h.
 */
#include "note.h"

#include <stdarg.h>
#include <string.h>

void ingest_note_send(ingest_note_fn fn, void *ctx, pcf_log_level level, const char *msg, const pcf_error *err, ...)
{
    if (!fn)
        return;
    ingest_note n = {level, msg, err, {NULL}};
    va_list ap;
    va_start(ap, err);
    for (size_t i = 0; i < 2 * INGEST_NOTE_FIELDS; i += 2) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        n.kv[i] = k;
        n.kv[i + 1] = va_arg(ap, const char *);
    }
    va_end(ap);
    fn(ctx, &n);
}

const char *ingest_note_get(const ingest_note *n, const char *key)
{
    for (size_t i = 0; i < 2 * INGEST_NOTE_FIELDS && n->kv[i]; i += 2)
        if (strcmp(n->kv[i], key) == 0)
            return n->kv[i + 1];
    return NULL;
}

_Static_assert(INGEST_NOTE_FIELDS == 8, "ingest_note_log passes exactly 16 field strings");

void ingest_note_log(const ingest_note *n, const char *key, const char *value)
{
    const char *const *f = n->kv;
    /* log.h takes its fields as arguments: the note's, NULL-ended, in full;
     * a NULL key ends the list wherever it falls */
    if (!key)
        pcf_log_error(n->level, n->msg, n->err, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10],
                      f[11], f[12], f[13], f[14], f[15], NULL);
    else
        pcf_log_error(n->level, n->msg, n->err, key, value, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8],
                      f[9], f[10], f[11], f[12], f[13], f[14], f[15], NULL);
}
