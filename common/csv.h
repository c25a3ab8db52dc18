/*
 * csv.h -- a streaming RFC 4180 CSV reader over a FILE*.
 *
 * One record at a time, so a file far larger than memory is read with a
 * bounded buffer (max_line_bytes).  Accepted: fields separated by ',',
 * records ended by LF or CRLF, fields optionally in double quotes with ""
 * for a literal quote and CR/LF allowed inside quotes, an optional UTF-8 BOM
 * at the very start of the file (skipped).  Rejected with PCF_ERR_PARSE:
 * a quote inside an unquoted field or text after a closing quote ("stray
 * quote"), a CR not followed by LF outside quotes, an embedded NUL byte, an
 * unterminated quoted field at end of file; with PCF_ERR_LIMIT: a record of
 * more than max_line_bytes raw bytes.  Fields are not trimmed.
 *
 * Usage:
 *     csv_reader *r = csv_new(f, "scada.csv", 0);
 *     while ((rc = csv_next(r, &err)) == PCF_OK && !csv_done(r)) {
 *         if (csv_count(r) == 0) continue;              // blank line
 *         use csv_field(r, 0) ... csv_field(r, csv_count(r) - 1);
 *     }
 *
 * End of file: csv_next returns PCF_OK with csv_done(r) true and no record.
 * A blank line is a record with csv_count() == 0.  A last record without
 * its final newline is returned normally but csv_truncated(r) is true, so a
 * loader that wants whole files can reject it.
 *
 * After an error the reader stays usable: the next csv_next skips to the
 * next physical line and continues (best effort resynchronisation, useful
 * for quarantining one bad line), except after an unterminated quote or a
 * read error, which end the input (csv_done becomes true).
 *
 * The reader does not own the FILE*; it reads ahead in its own buffer, so
 * the FILE position after use is unspecified.
 */
#ifndef PCF_CSV_H
#define PCF_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* Used when csv_new is given max_line_bytes == 0. */
#define CSV_DEFAULT_MAX_LINE 65536
/* Largest accepted max_line_bytes (64 MiB): a bigger limit is no limit. */
#define CSV_MAX_MAX_LINE ((size_t)64 << 20)

typedef struct csv_reader csv_reader;

/* Creates a reader over f.  source names the input in error messages
 * (copied; NULL gives "<csv>").  Returns NULL when out of memory or when
 * max_line_bytes exceeds CSV_MAX_MAX_LINE. */
csv_reader *csv_new(FILE *f, const char *source, size_t max_line_bytes);

/* Frees the reader (not the FILE) and sets *rp to NULL; NULL-safe. */
void csv_destroy(csv_reader **rp);

/* Reads the next record.  PCF_OK: a record (or end of file when
 * csv_done()); PCF_ERR_PARSE / PCF_ERR_LIMIT / PCF_ERR_IO with a
 * "source:line: reason" message in err. */
pcf_rc csv_next(csv_reader *r, pcf_error *err);

/* True once the input is exhausted (no record from the last csv_next). */
bool csv_done(const csv_reader *r);

/* Number of fields of the current record (0 for a blank line). */
size_t csv_count(const csv_reader *r);

/* Field i of the current record, NUL-terminated, unquoted; borrowed until
 * the next csv_next/csv_destroy.  NULL when i >= csv_count(r).  A field may
 * contain bytes after an embedded quote-protected newline, never a NUL. */
const char *csv_field(const csv_reader *r, size_t i);

/* Length in bytes of field i (0 when i >= csv_count(r)). */
size_t csv_field_len(const csv_reader *r, size_t i);

/* Physical line number (1-based) where the current record started. */
long csv_line(const csv_reader *r);

/* True when the current record was ended by end of file, not a newline. */
bool csv_truncated(const csv_reader *r);

/* The source name given to csv_new. */
const char *csv_source(const csv_reader *r);

/* Reads the next record as a header and checks it names exactly the n
 * columns in names, in order (ASCII case-insensitive, surrounding spaces
 * ignored).  Errors: PCF_ERR_PARSE "empty file" when there is no record,
 * "wrong header" (with what was expected) otherwise; reader errors pass
 * through. */
pcf_rc csv_header(csv_reader *r, const char *const names[], size_t n, pcf_error *err);

#endif
