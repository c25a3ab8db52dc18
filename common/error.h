/*
 * error.h -- the one error vocabulary of the project.
 *
 * Every library function that can fail returns a pcf_rc and, when the caller
 * passes a pcf_error, fills it with a human-readable message.  Messages about
 * input always start with "source:line: " so an operator can open the file at
 * the right place.  Library code never prints: tools and daemons decide what
 * to do with the message (log it, write it beside a failed file, exit 1).
 *
 * Checking style, as in curl:   if ((rc = foo(...)) != PCF_OK) return rc;
 */
#ifndef PCF_ERROR_H
#define PCF_ERROR_H

#include <stddef.h>

typedef enum pcf_rc {
    PCF_OK = 0,
    PCF_ERR_NOMEM,      /* allocation failed */
    PCF_ERR_IO,         /* open/read/write failed */
    PCF_ERR_PARSE,      /* input is malformed (the message says where) */
    PCF_ERR_INVALID,    /* input is well-formed but impossible (unknown id, out of range) */
    PCF_ERR_LIMIT,      /* input exceeds a documented size limit */
    PCF_ERR_DB,         /* PostgreSQL refused or the connection failed */
    PCF_ERR_NOCONV,     /* iterative solver did not converge */
    PCF_ERR_ISLAND,     /* network is split into islands */
    PCF_ERR_SINGULAR,   /* matrix is singular */
    PCF_ERR_NET,        /* network transfer (HTTP, ZeroMQ) failed */
    PCF_ERR_INTERNAL    /* a bug: an invariant did not hold */
} pcf_rc;

#define PCF_ERROR_MSG_MAX 512

typedef struct pcf_error {
    pcf_rc code;
    char msg[PCF_ERROR_MSG_MAX];
    char sqlstate[6];   /* PCF_ERR_DB from the server: its SQLSTATE, else "" */
} pcf_error;

/* Sets err (when not NULL) and returns code, so callers can write
 * `return pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: bad number", src, line);`.
 * Truncates long messages rather than failing. */
pcf_rc pcf_error_set(pcf_error *err, pcf_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to PCF_OK and an empty message. */
void pcf_error_clear(pcf_error *err);

/* Splits a message that starts with "source:line: " (the convention above):
 * copies source into file, sets *line and returns the text after the
 * location.  Returns NULL (and touches nothing) when there is no location.
 * Used by the logger to keep source and line as separate fields. */
const char *pcf_error_location(const char *msg, char *file, size_t filelen, long *line);

/* A short constant name for a code ("parse error", "out of memory"...). */
const char *pcf_rc_name(pcf_rc code);

#endif
