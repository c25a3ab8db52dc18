/*
 * mpcase.c -- MATPOWER case files (format version 2): read, write, free.
 *
 * What: turns the text of a MATPOWER case (an Octave function file) into an
 * mp_case and back, see mpcase.h for the data model.
 *
 * How the reader works.  One pass over the text with a cursor that counts
 * lines.  The text is a sequence of Octave statements separated by newlines,
 * `;` or `,`; each statement is recognised by its first token and handled by
 * one function:
 *
 *   function OUT = NAME            s_function     (first statement only)
 *   OUT.bus = [ ... ]              s_matrix       (bus, gen, branch, gencost)
 *   OUT.bus_name = { 'a'; ... }    s_cell
 *   OUT.version = '2'              s_string
 *   OUT.baseMVA = EXPR             s_expr_parse + s_eval
 *   OUT.other... = ANYTHING        s_skip_statement (unknown fields)
 *   [A, B, ~] = idx_bus            s_idx_assign   (MATPOWER column constants)
 *   NAME = EXPR                    s_scalar_assign
 *   OUT.T(:, COLS) = EXPR          s_block_assign (column scaling)
 *   end / endfunction              accepted once, after a function header
 *
 * Anything else (if, for, calls, ...) is an error naming the line.  Between
 * tokens s_skip_blank eats spaces, `%`/`#` comments and `...` continuations.
 *
 * Expressions are parsed into a small bounded tree (S_MAX_NODES nodes,
 * S_MAX_DEPTH nesting) with Octave's precedence: + - < * / .* ./ < unary
 * minus < ^ .^ (left-associative, as in Octave, so 2^3^2 is 64 and -2^2 is
 * -4).  In a block assignment the tree holds one leaf that stands for "the
 * element of the block being computed", and the tree is evaluated once per
 * element with the same IEEE operation, in the same order, that Octave's
 * elementwise kernels use (A / s is a(i) / s, A .^ 2 is a(i) * a(i), ...),
 * so the numbers are bit-identical to what MATPOWER sees.  Matrix-only
 * operations (A * A, A / A, A ^ k) are refused rather than approximated.
 *
 * After the last statement the case is validated as a whole (ids, types,
 * references between tables, column counts); errors there name the line of
 * the offending row, which is why the parser keeps each row's line number
 * beside the table.  On any error everything is freed: never a partial case.
 *
 * Limits on hostile input: MP_MAX_FILE_BYTES, MP_MAX_ROWS, MP_MAX_COLS from
 * mpcase.h, identifiers of at most 63 characters (Octave's namelengthmax),
 * S_MAX_VARS named scalars, strings of at most S_MAX_STRING bytes.  Exceeding
 * a limit is PCF_ERR_INVALID (the header's contract: PARSE or INVALID).
 *
 * Status columns: MATPOWER treats status > 0 as in service and anything else
 * as out of service, so any finite value is accepted and kept as written.
 * Bus ids must be integers in 1..2^31-1 so that callers may hold them in an
 * int32 or a long without loss.  A file without mpc.version is taken as
 * version 2 (the only one read); any other version is refused.
 *
 * The writer always writes `function mpc = NAME`; a case whose name is empty
 * or not a valid Octave identifier is written as "mpc_case".  Bus names
 * holding a line break cannot be written (PCF_ERR_INVALID).
 */
#include "mpcase.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"

#define S_MAX_IDENT   63
#define S_MAX_VARS    256
#define S_MAX_NODES   256
#define S_MAX_DEPTH   64
#define S_MAX_STRING  4096
#define S_MAX_BUS_ID  2147483647.0

enum { S_BUS, S_GEN, S_BRANCH, S_GENCOST, S_NTABLES };
static const char *const s_table_names[S_NTABLES] = { "bus", "gen", "branch", "gencost" };

typedef struct s_var {
    char name[S_MAX_IDENT + 1];
    double v;
} s_var;

/* one growing table while it is being read, with the line of each row */
typedef struct s_rows {
    double *v;
    size_t n, cap;          /* values */
    unsigned *line;
    size_t rows, rcap;      /* rows */
    size_t cols;
} s_rows;

typedef struct s_parser {
    const char *src;        /* name used in messages */
    const char *p, *end;
    unsigned line;
    pcf_error *err;
    mp_case *c;
    unsigned *row_line[S_NTABLES];   /* line of each row of each table */
    unsigned def_line[S_NTABLES];    /* 0: table never assigned */
    unsigned base_line, bus_name_line;
    char out[S_MAX_IDENT + 1];       /* output variable, "mpc" */
    int nstmt, seen_function, seen_end;
    s_var vars[S_MAX_VARS];
    size_t nvars;
} s_parser;

/* ---- messages ------------------------------------------------------------ */

static pcf_rc s_fail(s_parser *ps, unsigned line, pcf_rc code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static pcf_rc s_fail(s_parser *ps, unsigned line, pcf_rc code, const char *fmt, ...)
{
    char msg[PCF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pcf_error_set(ps->err, code, "%s:%u: %s", ps->src, line, msg);
}

/* A printable copy of up to 24 bytes of input for an error message. */
static const char *s_show(const char *s, size_t n, char *buf, size_t size)
{
    size_t k = 0;
    if (n > 24)
        n = 24;
    for (size_t i = 0; i < n && k + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[k++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    buf[k] = '\0';
    return buf;
}

/* ---- lexing ------------------------------------------------------------------ */

static int s_at_end(const s_parser *ps)
{
    return ps->p >= ps->end;
}

static int s_peek(const s_parser *ps)
{
    return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}

static int s_peek_at(const s_parser *ps, size_t k)
{
    return (size_t)(ps->end - ps->p) > k ? (unsigned char)ps->p[k] : -1;
}

static int s_is_ident_start(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static int s_is_ident(int ch)
{
    return s_is_ident_start(ch) || (ch >= '0' && ch <= '9');
}

static int s_is_continuation(const s_parser *ps)
{
    return s_peek(ps) == '.' && s_peek_at(ps, 1) == '.' && s_peek_at(ps, 2) == '.';
}

/* Skips to the newline (not past it). */
static void s_skip_to_eol(s_parser *ps)
{
    const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
    ps->p = nl ? nl : ps->end;
}

/* Skips blanks, comments and `...` continuations (which also swallow the
 * newline, so the statement goes on).  Stops at a newline or a token. */
static pcf_rc s_skip_blank(s_parser *ps)
{
    for (;;) {
        int ch = s_peek(ps);
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f') {
            ps->p++;
        } else if (ch == '%' || ch == '#') {
            s_skip_to_eol(ps);
        } else if (ch == '.' && s_is_continuation(ps)) {
            unsigned at = ps->line;
            s_skip_to_eol(ps);
            if (s_at_end(ps))
                return s_fail(ps, at, PCF_ERR_PARSE,
                              "'...' continues a statement past the end of the file");
            ps->p++;
            ps->line++;
        } else {
            return PCF_OK;
        }
    }
}

/* Reads an identifier at the cursor into buf (S_MAX_IDENT+1 bytes). */
static pcf_rc s_ident(s_parser *ps, char *buf)
{
    const char *s = ps->p;
    if (!s_is_ident_start(s_peek(ps)))
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "expected a name");
    while (s_is_ident(s_peek(ps)))
        ps->p++;
    size_t n = (size_t)(ps->p - s);
    if (n > S_MAX_IDENT)
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "name longer than %d characters",
                      S_MAX_IDENT);
    memcpy(buf, s, n);
    buf[n] = '\0';
    return PCF_OK;
}

/* Consumes `ch` after blanks, or fails saying what was expected. */
static pcf_rc s_expect(s_parser *ps, int ch, const char *what)
{
    pcf_rc rc = s_skip_blank(ps);
    if (rc)
        return rc;
    if (s_peek(ps) != ch) {
        char b[32];
        if (s_at_end(ps))
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "expected %s, found end of file", what);
        if (s_peek(ps) == '\n')
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "expected %s, found end of line", what);
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "expected %s, found '%s'", what,
                      s_show(ps->p, 1, b, sizeof b));
    }
    ps->p++;
    return PCF_OK;
}

/* True (and consumes it) when the next token is a lone `=` (not `==`). */
static int s_take_assign(s_parser *ps)
{
    if (s_peek(ps) == '=' && s_peek_at(ps, 1) != '=') {
        ps->p++;
        return 1;
    }
    return 0;
}

/* A quoted string: 'it''s' or "with \"escapes\"".  In double quotes only
 * \\ \" \' are kept (as the character itself); other escapes (\n...) are
 * refused unless `lenient` (a skipped value, whose text does not matter),
 * so that a bus name never holds a character the writer cannot spell.
 * Newlines cannot occur inside a string.  *out is malloc'ed. */
static pcf_rc s_string(s_parser *ps, int lenient, char **out)
{
    int q = s_peek(ps);
    char buf[S_MAX_STRING + 1];
    size_t n = 0;
    if (q != '\'' && q != '"')
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "expected a quoted string");
    ps->p++;
    for (;;) {
        int ch = s_peek(ps);
        if (ch < 0 || ch == '\n' || ch == '\r' || ch == '\0')
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "string is not closed on its line");
        ps->p++;
        if (ch == q) {
            if (s_peek(ps) != q)
                break;
            ps->p++;                        /* '' or "" is one quote */
        } else if (ch == '\\' && q == '"') {
            int e = s_peek(ps);
            if (e < 0 || e == '\n' || e == '\r' || e == '\0' ||
                (!lenient && e != '\\' && e != '"' && e != '\''))
                return s_fail(ps, ps->line, PCF_ERR_PARSE, "unsupported escape in string");
            ch = e;
            ps->p++;
        }
        if (n == S_MAX_STRING)
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "string longer than %d bytes",
                          S_MAX_STRING);
        buf[n++] = (char)ch;
    }
    *out = malloc(n + 1);
    if (!*out)
        return s_fail(ps, ps->line, PCF_ERR_NOMEM, "out of memory");
    memcpy(*out, buf, n);
    (*out)[n] = '\0';
    return PCF_OK;
}

/* ---- named scalars ------------------------------------------------------------ */

static s_var *s_var_find(s_parser *ps, const char *name)
{
    for (size_t i = 0; i < ps->nvars; i++)
        if (strcmp(ps->vars[i].name, name) == 0)
            return &ps->vars[i];
    return NULL;
}

static pcf_rc s_var_set(s_parser *ps, const char *name, double v, unsigned line)
{
    s_var *var = s_var_find(ps, name);
    if (!var) {
        if (ps->nvars == S_MAX_VARS)
            return s_fail(ps, line, PCF_ERR_INVALID, "more than %d named values", S_MAX_VARS);
        var = &ps->vars[ps->nvars++];
        memcpy(var->name, name, strlen(name) + 1);
    }
    var->v = v;
    return PCF_OK;
}

/* Octave built-ins a case may use as constants (when not shadowed). */
static int s_builtin(const char *name, double *v)
{
    if (!strcmp(name, "Inf") || !strcmp(name, "inf")) {
        *v = INFINITY;
        return 1;
    }
    if (!strcmp(name, "NaN") || !strcmp(name, "nan")) {
        *v = NAN;
        return 1;
    }
    if (!strcmp(name, "pi")) {
        *v = M_PI;
        return 1;
    }
    return 0;
}

static int s_is_keyword(const char *name)
{
    static const char *const kw[] = {
        "if", "elseif", "else", "end", "for", "parfor", "while", "do", "until",
        "switch", "case", "otherwise", "break", "continue", "return", "function",
        "endfunction", "endif", "endfor", "endwhile", "endswitch", "try", "catch",
        "end_try_catch", "unwind_protect", "unwind_protect_cleanup",
        "end_unwind_protect", "global", "persistent", "classdef",
    };
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (!strcmp(name, kw[i]))
            return 1;
    return 0;
}

/* ---- tables ---------------------------------------------------------------------- */

static mp_matrix *s_table(mp_case *c, int t)
{
    switch (t) {
    case S_BUS: return &c->bus;
    case S_GEN: return &c->gen;
    case S_BRANCH: return &c->branch;
    default: return &c->gencost;
    }
}

static int s_table_index(const char *field)
{
    for (int t = 0; t < S_NTABLES; t++)
        if (!strcmp(field, s_table_names[t]))
            return t;
    return -1;
}

static void s_rows_free(s_rows *r)
{
    free(r->v);
    free(r->line);
    memset(r, 0, sizeof *r);
}

static pcf_rc s_rows_push(s_parser *ps, s_rows *r, double v)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        double *nv = realloc(r->v, cap * sizeof *nv);
        if (!nv)
            return s_fail(ps, ps->line, PCF_ERR_NOMEM, "out of memory");
        r->v = nv;
        r->cap = cap;
    }
    r->v[r->n++] = v;
    return PCF_OK;
}

/* Closes a row of `count` values that started on `line`; empty rows vanish,
 * as in Octave. */
static pcf_rc s_rows_end(s_parser *ps, s_rows *r, size_t count, unsigned line,
                         const char *what)
{
    if (count == 0)
        return PCF_OK;
    if (r->rows == 0)
        r->cols = count;
    else if (count != r->cols)
        return s_fail(ps, line, PCF_ERR_PARSE,
                      "%s: row %zu has %zu columns, the rows above have %zu",
                      what, r->rows + 1, count, r->cols);
    if (r->rows == MP_MAX_ROWS)
        return s_fail(ps, line, PCF_ERR_INVALID, "%s: more than %d rows", what,
                      MP_MAX_ROWS);
    if (r->rows == r->rcap) {
        size_t cap = r->rcap ? r->rcap * 2 : 64;
        unsigned *nl = realloc(r->line, cap * sizeof *nl);
        if (!nl)
            return s_fail(ps, line, PCF_ERR_NOMEM, "out of memory");
        r->line = nl;
        r->rcap = cap;
    }
    r->line[r->rows++] = line;
    return PCF_OK;
}

/* A number inside a matrix: the longest run of number-ish characters,
 * stopping before a `...` continuation, checked by parse_double_ext. */
static pcf_rc s_matrix_number(s_parser *ps, s_rows *r, const char *what)
{
    const char *s = ps->p;
    while (!s_at_end(ps)) {
        int ch = s_peek(ps);
        if (!(s_is_ident(ch) || ch == '.' || ch == '+' || ch == '-'))
            break;
        if (ch == '.' && s_is_continuation(ps))
            break;
        ps->p++;
    }
    size_t n = (size_t)(ps->p - s);
    char b[32];
    double v;
    if (n == 0)
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s: unexpected character '%s' in matrix",
                      what, s_show(s, 1, b, sizeof b));
    if (parse_double_ext(s, n, &v) != PCF_OK)
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s: '%s' is not a number", what,
                      s_show(s, n, b, sizeof b));
    return s_rows_push(ps, r, v);
}

/* `[ rows ]` where rows are separated by `;` or newlines and values by
 * blanks or commas.  Only literal numbers (with Inf/NaN) are accepted. */
static pcf_rc s_matrix_body(s_parser *ps, s_rows *r, const char *what)
{
    unsigned open_line = ps->line, row_line = ps->line;
    size_t count = 0;
    int need_value = 0;                 /* after a comma */
    pcf_rc rc;
    ps->p++;                            /* '[' */
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        int ch = s_peek(ps);
        if (ch < 0)
            return s_fail(ps, open_line, PCF_ERR_PARSE, "%s: '[' is never closed by ']'", what);
        if (ch == ']' || ch == ';' || ch == '\n') {
            if (need_value)
                return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s: value missing after ','", what);
            if ((rc = s_rows_end(ps, r, count, row_line, what)) != PCF_OK)
                return rc;
            count = 0;
            ps->p++;
            if (ch == ']')
                return PCF_OK;
            if (ch == '\n')
                ps->line++;
            row_line = ps->line;
            continue;
        }
        if (ch == ',') {
            if (count == 0 || need_value)
                return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s: empty value before ','", what);
            need_value = 1;
            ps->p++;
            continue;
        }
        if (count == 0)
            row_line = ps->line;
        if (count == MP_MAX_COLS)
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "%s: row %zu has more than %d columns",
                          what, r->rows + 1, MP_MAX_COLS);
        if ((rc = s_matrix_number(ps, r, what)) != PCF_OK)
            return rc;
        count++;
        need_value = 0;
    }
}

/* OUT.T = [ ... ]: replaces table t. */
static pcf_rc s_matrix(s_parser *ps, int t)
{
    s_rows r = { 0 };
    char what[96];
    snprintf(what, sizeof what, "%s.%s", ps->out, s_table_names[t]);
    unsigned line = ps->line;
    pcf_rc rc = s_matrix_body(ps, &r, what);
    if (rc) {
        s_rows_free(&r);
        return rc;
    }
    mp_matrix *m = s_table(ps->c, t);
    free(m->v);
    free(ps->row_line[t]);
    m->rows = r.rows;
    m->cols = r.rows ? r.cols : 0;
    m->v = r.rows ? r.v : NULL;
    if (!r.rows)
        free(r.v);
    ps->row_line[t] = r.line;
    ps->def_line[t] = line;
    return PCF_OK;
}

/* OUT.bus_name = { 'a'; 'b'; ... } */
static pcf_rc s_cell(s_parser *ps)
{
    unsigned open_line = ps->line;
    char **names = NULL;
    size_t n = 0, cap = 0;
    pcf_rc rc = PCF_OK;
    ps->p++;                            /* '{' */
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            break;
        int ch = s_peek(ps);
        if (ch < 0) {
            rc = s_fail(ps, open_line, PCF_ERR_PARSE, "bus_name: '{' is never closed by '}'");
            break;
        }
        if (ch == '}') {
            ps->p++;
            break;
        }
        if (ch == ';' || ch == ',' || ch == '\n') {
            if (ch == '\n')
                ps->line++;
            ps->p++;
            continue;
        }
        if (ch != '\'' && ch != '"') {
            rc = s_fail(ps, ps->line, PCF_ERR_PARSE, "bus_name: expected a quoted string");
            break;
        }
        if (n == MP_MAX_ROWS) {
            rc = s_fail(ps, ps->line, PCF_ERR_INVALID, "bus_name: more than %d names",
                        MP_MAX_ROWS);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = s_fail(ps, ps->line, PCF_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
            cap = ncap;
        }
        if ((rc = s_string(ps, 0, &names[n])) != PCF_OK)
            break;
        n++;
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    mp_case *c = ps->c;
    for (size_t i = 0; i < c->bus_name_count; i++)
        free(c->bus_name[i]);
    free(c->bus_name);
    c->bus_name = names;
    c->bus_name_count = n;
    ps->bus_name_line = open_line;
    return PCF_OK;
}

/* Skips the value of an unknown field up to the end of the statement,
 * minding brackets, strings and comments. */
static pcf_rc s_skip_statement(s_parser *ps)
{
    unsigned open_line = ps->line;
    long depth = 0;
    int prev = '=';                     /* last significant character */
    pcf_rc rc;
    for (;;) {
        const char *before = ps->p;
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        if (ps->p != before && depth > 0)
            prev = ' ';                 /* [a 'b']: after a blank, a quote opens */
        int ch = s_peek(ps);
        if (ch < 0) {
            if (depth > 0)
                return s_fail(ps, open_line, PCF_ERR_PARSE, "bracket opened here is never closed");
            return PCF_OK;
        }
        if (depth == 0 && (ch == '\n' || ch == ';' || ch == ','))
            return PCF_OK;
        if (ch == '\n') {
            ps->line++;
        } else if (ch == '[' || ch == '{' || ch == '(') {
            depth++;
        } else if (ch == ']' || ch == '}' || ch == ')') {
            if (--depth < 0)
                return s_fail(ps, ps->line, PCF_ERR_PARSE, "unbalanced '%c'", ch);
        } else if ((ch == '\'' && !(s_is_ident(prev) || prev == ')' || prev == ']' ||
                                    prev == '}' || prev == '\'' || prev == '.')) ||
                   ch == '"') {
            char *tmp = NULL;
            if ((rc = s_string(ps, 1, &tmp)) != PCF_OK)
                return rc;
            free(tmp);
            prev = '"';
            continue;
        }
        prev = ch;
        ps->p++;
    }
}

/* ---- expressions ------------------------------------------------------------------ */

enum { N_NUM, N_ELEM, N_NEG, N_ADD, N_SUB, N_MUL, N_DIV, N_POW, N_EPOW };

typedef struct s_node {
    int op;
    int a, b;               /* children */
    int blk;                /* depends on the block element */
    double v;               /* N_NUM */
} s_node;

typedef struct s_expr {
    s_node n[S_MAX_NODES];
    int count, depth;
    int table;              /* block context: table and columns, or -1 */
    const size_t *cols;
    size_t ncols;
} s_expr;

static pcf_rc s_add_node(s_parser *ps, s_expr *e, int op, int a, int b, double v, int *out)
{
    if (e->count == S_MAX_NODES)
        return s_fail(ps, ps->line, PCF_ERR_INVALID, "expression too long");
    s_node *n = &e->n[e->count];
    n->op = op;
    n->a = a;
    n->b = b;
    n->v = v;
    n->blk = op == N_ELEM || (a >= 0 && e->n[a].blk) || (b >= 0 && e->n[b].blk);
    *out = e->count++;
    return PCF_OK;
}

static pcf_rc s_expr_sum(s_parser *ps, s_expr *e, int *out);
static pcf_rc s_eval(s_parser *ps, const s_expr *e, int i, double elem, double *out);

/* A number literal; a '.' directly before * / ^ \ ' belongs to the operator
 * (2./x is 2 ./ x), as in Octave. */
static pcf_rc s_expr_number(s_parser *ps, double *v)
{
    const char *s = ps->p;
    while (isdigit(s_peek(ps)))
        ps->p++;
    if (s_peek(ps) == '.' && !s_is_continuation(ps)) {
        int nx = s_peek_at(ps, 1);
        if (nx != '*' && nx != '/' && nx != '^' && nx != '\\' && nx != '\'') {
            ps->p++;
            while (isdigit(s_peek(ps)))
                ps->p++;
        }
    }
    if ((s_peek(ps) == 'e' || s_peek(ps) == 'E') &&
        (isdigit(s_peek_at(ps, 1)) ||
         ((s_peek_at(ps, 1) == '+' || s_peek_at(ps, 1) == '-') && isdigit(s_peek_at(ps, 2)))))
    {
        ps->p += 2;
        while (isdigit(s_peek(ps)))
            ps->p++;
    }
    char b[32];
    if (s_is_ident(s_peek(ps)) || s_peek(ps) == '.' ||
        parse_double(s, (size_t)(ps->p - s), v) != PCF_OK) {
        while (s_is_ident(s_peek(ps)) || s_peek(ps) == '.')
            ps->p++;
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "'%s' is not a number",
                      s_show(s, (size_t)(ps->p - s), b, sizeof b));
    }
    return PCF_OK;
}

/* A column list: one index or [i j, k], each a positive integer literal or
 * a named value.  Converted to 0-based and checked against `ncols`. */
static pcf_rc s_col_list(s_parser *ps, size_t ncols, size_t *cols, size_t max, size_t *n,
                         const char *what)
{
    pcf_rc rc;
    int bracket = 0;
    *n = 0;
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (s_peek(ps) == '[') {
        bracket = 1;
        ps->p++;
    }
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        int ch = s_peek(ps);
        if (bracket && ch == ']') {
            ps->p++;
            break;
        }
        if (bracket && ch == ',' && *n > 0) {
            ps->p++;
            continue;
        }
        double v;
        if (isdigit(ch)) {
            if ((rc = s_expr_number(ps, &v)) != PCF_OK)
                return rc;
        } else if (s_is_ident_start(ch)) {
            char name[S_MAX_IDENT + 1];
            if ((rc = s_ident(ps, name)) != PCF_OK)
                return rc;
            s_var *var = s_var_find(ps, name);
            if (!var)
                return s_fail(ps, ps->line, PCF_ERR_INVALID, "'%s' is not defined", name);
            v = var->v;
        } else {
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s: expected a column index", what);
        }
        if (!(v >= 1 && v <= (double)ncols && v == floor(v)))
            return s_fail(ps, ps->line, PCF_ERR_INVALID,
                          "%s: column index %g is not in 1..%zu", what, v, ncols);
        if (*n == max)
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "%s: too many indices", what);
        cols[(*n)++] = (size_t)v - 1;
        if (!bracket)
            break;
    }
    if (*n == 0)
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s: empty column list", what);
    return PCF_OK;
}

/* OUT.T(r, c) as a scalar, or OUT.T(:, cols) as the block element when it
 * names the block being assigned. */
static pcf_rc s_expr_table_ref(s_parser *ps, s_expr *e, int t, int *out)
{
    const mp_matrix *m = s_table(ps->c, t);
    char what[96];
    pcf_rc rc;
    snprintf(what, sizeof what, "%s.%s", ps->out, s_table_names[t]);
    if (!ps->def_line[t])
        return s_fail(ps, ps->line, PCF_ERR_INVALID, "%s is used before it is assigned", what);
    ps->p++;                            /* '(' */
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (s_peek(ps) == ':') {
        size_t cols[MP_MAX_COLS], n;
        ps->p++;
        if ((rc = s_expect(ps, ',', "','")) != PCF_OK ||
            (rc = s_col_list(ps, m->cols, cols, MP_MAX_COLS, &n, what)) != PCF_OK ||
            (rc = s_expect(ps, ')', "')'")) != PCF_OK)
            return rc;
        if (e->table != t || n != e->ncols || memcmp(cols, e->cols, n * sizeof *cols))
            return s_fail(ps, ps->line, PCF_ERR_PARSE,
                          "a whole-column block may only appear as the block being assigned");
        return s_add_node(ps, e, N_ELEM, -1, -1, 0, out);
    }
    size_t row[1], col[1], n;
    if ((rc = s_col_list(ps, m->rows, row, 1, &n, what)) != PCF_OK ||
        (rc = s_expect(ps, ',', "','")) != PCF_OK ||
        (rc = s_col_list(ps, m->cols, col, 1, &n, what)) != PCF_OK ||
        (rc = s_expect(ps, ')', "')'")) != PCF_OK)
        return rc;
    return s_add_node(ps, e, N_NUM, -1, -1, MP_AT(m, row[0], col[0]), out);
}

/* OUT.field inside an expression. */
static pcf_rc s_expr_field(s_parser *ps, s_expr *e, int *out)
{
    char field[S_MAX_IDENT + 1];
    pcf_rc rc;
    ps->p++;                            /* '.' */
    if ((rc = s_ident(ps, field)) != PCF_OK)
        return rc;
    if (!strcmp(field, "baseMVA")) {
        if (!ps->base_line)
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "%s.baseMVA is used before it is assigned",
                          ps->out);
        return s_add_node(ps, e, N_NUM, -1, -1, ps->c->base_mva, out);
    }
    int t = s_table_index(field);
    if (t >= 0 && s_peek(ps) == '(')
        return s_expr_table_ref(ps, e, t, out);
    return s_fail(ps, ps->line, PCF_ERR_PARSE, "unsupported use of %s.%s in an expression",
                  ps->out, field);
}

static pcf_rc s_expr_primary(s_parser *ps, s_expr *e, int *out)
{
    pcf_rc rc;
    char b[32];
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    int ch = s_peek(ps);
    if (isdigit(ch) || (ch == '.' && isdigit(s_peek_at(ps, 1)))) {
        double v;
        if ((rc = s_expr_number(ps, &v)) != PCF_OK)
            return rc;
        return s_add_node(ps, e, N_NUM, -1, -1, v, out);
    }
    if (ch == '(') {
        ps->p++;
        if ((rc = s_expr_sum(ps, e, out)) != PCF_OK)
            return rc;
        return s_expect(ps, ')', "')'");
    }
    if (s_is_ident_start(ch)) {
        char name[S_MAX_IDENT + 1];
        double v;
        if ((rc = s_ident(ps, name)) != PCF_OK)
            return rc;
        if (!strcmp(name, ps->out) && s_peek(ps) == '.')
            return s_expr_field(ps, e, out);
        if (s_peek(ps) == '(')
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "function calls are not supported ('%s')",
                          name);
        s_var *var = s_var_find(ps, name);
        if (var)
            v = var->v;
        else if (!s_builtin(name, &v))
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "'%s' is not defined", name);
        return s_add_node(ps, e, N_NUM, -1, -1, v, out);
    }
    if (ch < 0 || ch == '\n' || ch == ';' || ch == ',')
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "expression expected");
    return s_fail(ps, ps->line, PCF_ERR_PARSE, "unexpected '%s' in expression",
                  s_show(ps->p, 1, b, sizeof b));
}

/* Reads a power operator (^ or .^) if one is next. */
static int s_take_pow(s_parser *ps)
{
    if (s_peek(ps) == '^') {
        ps->p++;
        return N_POW;
    }
    if (s_peek(ps) == '.' && s_peek_at(ps, 1) == '^') {
        ps->p += 2;
        return N_EPOW;
    }
    return -1;
}

/* Unary signs directly after ^ (2^-1): sign then primary. */
static pcf_rc s_expr_pow_operand(s_parser *ps, s_expr *e, int *out)
{
    pcf_rc rc;
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (s_peek(ps) == '-' || s_peek(ps) == '+') {
        int neg = s_peek(ps) == '-';
        int a;
        ps->p++;
        if (++e->depth > S_MAX_DEPTH)
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "expression nested too deeply");
        rc = s_expr_pow_operand(ps, e, &a);
        e->depth--;
        if (rc)
            return rc;
        if (!neg) {
            *out = a;
            return PCF_OK;
        }
        return s_add_node(ps, e, N_NEG, a, -1, 0, out);
    }
    return s_expr_primary(ps, e, out);
}

static pcf_rc s_expr_power(s_parser *ps, s_expr *e, int *out)
{
    pcf_rc rc;
    int a, b, op;
    if ((rc = s_expr_primary(ps, e, &a)) != PCF_OK)
        return rc;
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        if ((op = s_take_pow(ps)) < 0)
            break;
        if ((rc = s_expr_pow_operand(ps, e, &b)) != PCF_OK)
            return rc;
        if (e->n[b].blk || (op == N_POW && e->n[a].blk))
            return s_fail(ps, ps->line, PCF_ERR_PARSE,
                          "matrix power is not supported (only block .^ scalar)");
        if ((rc = s_add_node(ps, e, op, a, b, 0, &a)) != PCF_OK)
            return rc;
    }
    *out = a;
    return PCF_OK;
}

static pcf_rc s_expr_unary(s_parser *ps, s_expr *e, int *out)
{
    pcf_rc rc;
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    int ch = s_peek(ps);
    if (ch == '-' || ch == '+') {
        int a;
        ps->p++;
        if (++e->depth > S_MAX_DEPTH)
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "expression nested too deeply");
        rc = s_expr_unary(ps, e, &a);
        e->depth--;
        if (rc)
            return rc;
        if (ch == '+') {
            *out = a;
            return PCF_OK;
        }
        return s_add_node(ps, e, N_NEG, a, -1, 0, out);
    }
    return s_expr_power(ps, e, out);
}

static pcf_rc s_expr_product(s_parser *ps, s_expr *e, int *out)
{
    pcf_rc rc;
    int a, b;
    if ((rc = s_expr_unary(ps, e, &a)) != PCF_OK)
        return rc;
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        int ch = s_peek(ps), dot = 0;
        if (ch == '.' && (s_peek_at(ps, 1) == '*' || s_peek_at(ps, 1) == '/')) {
            dot = 1;
            ch = s_peek_at(ps, 1);
        } else if (ch == '\\' || (ch == '.' && s_peek_at(ps, 1) == '\\')) {
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "left division is not supported");
        }
        if (ch != '*' && ch != '/')
            break;
        ps->p += 1 + dot;
        if ((rc = s_expr_unary(ps, e, &b)) != PCF_OK)
            return rc;
        /* Octave: A * A is a matrix product, x / A a matrix solve. */
        if (!dot && ((ch == '*' && e->n[a].blk && e->n[b].blk) || (ch == '/' && e->n[b].blk)))
            return s_fail(ps, ps->line, PCF_ERR_PARSE,
                          "matrix %s is not supported (use .%c)",
                          ch == '*' ? "product" : "division", ch);
        if ((rc = s_add_node(ps, e, ch == '*' ? N_MUL : N_DIV, a, b, 0, &a)) != PCF_OK)
            return rc;
    }
    *out = a;
    return PCF_OK;
}

static pcf_rc s_expr_sum(s_parser *ps, s_expr *e, int *out)
{
    pcf_rc rc;
    int a, b;
    if (++e->depth > S_MAX_DEPTH)
        return s_fail(ps, ps->line, PCF_ERR_INVALID, "expression nested too deeply");
    if ((rc = s_expr_product(ps, e, &a)) != PCF_OK)
        return rc;
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        int ch = s_peek(ps);
        if (ch != '+' && ch != '-')
            break;
        ps->p++;
        if ((rc = s_expr_product(ps, e, &b)) != PCF_OK)
            return rc;
        if ((rc = s_add_node(ps, e, ch == '+' ? N_ADD : N_SUB, a, b, 0, &a)) != PCF_OK)
            return rc;
    }
    e->depth--;
    *out = a;
    return PCF_OK;
}

/* Octave's scalar ^ scalar is std::pow; a negative base with a fractional
 * exponent would be complex, which a case cannot hold. */
static pcf_rc s_pow(s_parser *ps, double a, double b, double *out)
{
    if (a < 0 && b != floor(b) && isfinite(b))
        return s_fail(ps, ps->line, PCF_ERR_INVALID, "power gives a complex number");
    *out = pow(a, b);
    return PCF_OK;
}

/* Octave's elem_xpow(NDArray, double): integer exponents 2, 3, -1 are
 * computed by multiplication/division, others by pow. */
static pcf_rc s_elem_pow(s_parser *ps, double a, double b, double *out)
{
    if (b == floor(b) && fabs(b) <= 2147483647.0) {
        int k = (int)b;
        if (k == 2)
            *out = a * a;
        else if (k == 3)
            *out = a * a * a;
        else if (k == -1)
            *out = 1.0 / a;
        else
            *out = pow(a, (double)k);
        return PCF_OK;
    }
    return s_pow(ps, a, b, out);
}

static pcf_rc s_eval(s_parser *ps, const s_expr *e, int i, double elem, double *out)
{
    const s_node *n = &e->n[i];
    double a = 0, b = 0;
    pcf_rc rc;
    if (n->op == N_NUM) {
        *out = n->v;
        return PCF_OK;
    }
    if (n->op == N_ELEM) {
        *out = elem;
        return PCF_OK;
    }
    if ((rc = s_eval(ps, e, n->a, elem, &a)) != PCF_OK)
        return rc;
    if (n->b >= 0 && (rc = s_eval(ps, e, n->b, elem, &b)) != PCF_OK)
        return rc;
    switch (n->op) {
    case N_NEG: *out = -a; return PCF_OK;
    case N_ADD: *out = a + b; return PCF_OK;
    case N_SUB: *out = a - b; return PCF_OK;
    case N_MUL: *out = a * b; return PCF_OK;
    case N_DIV: *out = a / b; return PCF_OK;
    case N_POW: return s_pow(ps, a, b, out);
    case N_EPOW:
        if (e->n[n->a].blk)
            return s_elem_pow(ps, a, b, out);
        return s_pow(ps, a, b, out);
    default:
        return s_fail(ps, ps->line, PCF_ERR_INTERNAL, "bad expression node");
    }
}

/* Parses and evaluates a scalar expression (no block element allowed). */
static pcf_rc s_scalar_expr(s_parser *ps, double *v)
{
    s_expr *e = malloc(sizeof *e);
    int root;
    pcf_rc rc;
    if (!e)
        return s_fail(ps, ps->line, PCF_ERR_NOMEM, "out of memory");
    e->count = 0;
    e->depth = 0;
    e->table = -1;
    e->cols = NULL;
    e->ncols = 0;
    rc = s_expr_sum(ps, e, &root);
    if (!rc)
        rc = s_eval(ps, e, root, 0, v);
    free(e);
    return rc;
}

/* ---- statements -------------------------------------------------------------------- */

/* OUT.T(:, COLS) = EXPR */
static pcf_rc s_block_assign(s_parser *ps, int t)
{
    mp_matrix *m = s_table(ps->c, t);
    size_t cols[MP_MAX_COLS], ncols;
    double tmp[MP_MAX_COLS];
    char what[96];
    unsigned line = ps->line;
    pcf_rc rc;
    snprintf(what, sizeof what, "%s.%s", ps->out, s_table_names[t]);
    if (!ps->def_line[t])
        return s_fail(ps, line, PCF_ERR_INVALID, "%s is used before it is assigned", what);
    ps->p++;                            /* '(' */
    if ((rc = s_expect(ps, ':', "':' (only whole columns can be assigned)")) != PCF_OK ||
        (rc = s_expect(ps, ',', "','")) != PCF_OK ||
        (rc = s_col_list(ps, m->cols, cols, MP_MAX_COLS, &ncols, what)) != PCF_OK ||
        (rc = s_expect(ps, ')', "')'")) != PCF_OK ||
        (rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (!s_take_assign(ps))
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "expected '='");

    s_expr *e = malloc(sizeof *e);
    int root;
    if (!e)
        return s_fail(ps, line, PCF_ERR_NOMEM, "out of memory");
    e->count = 0;
    e->depth = 0;
    e->table = t;
    e->cols = cols;
    e->ncols = ncols;
    rc = s_expr_sum(ps, e, &root);
    /* Octave computes the whole right side, then stores it. */
    for (size_t r = 0; !rc && r < m->rows; r++) {
        for (size_t k = 0; !rc && k < ncols; k++)
            rc = s_eval(ps, e, root, MP_AT(m, r, cols[k]), &tmp[k]);
        for (size_t k = 0; !rc && k < ncols; k++)
            MP_AT(m, r, cols[k]) = tmp[k];
    }
    free(e);
    return rc;
}

/* [A, B, ~, ...] = idx_bus | idx_brch | idx_gen | idx_cost */
static pcf_rc s_idx_assign(s_parser *ps)
{
    static const double bus[] = { 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                  14, 15, 16, 17 };
    static const double brch[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16, 17, 18,
                                   19, 12, 13, 20, 21 };
    static const double gen[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 22, 23, 24, 25, 11, 12,
                                  13, 14, 15, 16, 17, 18, 19, 20, 21 };
    static const double cost[] = { 1, 2, 1, 2, 3, 4, 5 };
    char names[32][S_MAX_IDENT + 1];
    size_t n = 0;
    unsigned line = ps->line;
    pcf_rc rc;
    ps->p++;                            /* '[' */
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        int ch = s_peek(ps);
        if (ch == ']') {
            ps->p++;
            break;
        }
        if (ch == ',' && n > 0) {
            ps->p++;
            continue;
        }
        if (n == 32)
            return s_fail(ps, ps->line, PCF_ERR_INVALID, "too many names on the left of '='");
        if (ch == '~') {
            ps->p++;
            names[n++][0] = '\0';
            continue;
        }
        if (!s_is_ident_start(ch))
            return s_fail(ps, ps->line, PCF_ERR_PARSE,
                          "unsupported statement (expected [NAME, ...] = idx_bus)");
        if ((rc = s_ident(ps, names[n++])) != PCF_OK)
            return rc;
    }
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (!s_take_assign(ps))
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "expected '='");
    char fn[S_MAX_IDENT + 1];
    if ((rc = s_skip_blank(ps)) != PCF_OK || (rc = s_ident(ps, fn)) != PCF_OK)
        return rc;
    const double *vals;
    size_t nvals;
    if (!strcmp(fn, "idx_bus")) {
        vals = bus;
        nvals = sizeof bus / sizeof bus[0];
    } else if (!strcmp(fn, "idx_brch")) {
        vals = brch;
        nvals = sizeof brch / sizeof brch[0];
    } else if (!strcmp(fn, "idx_gen")) {
        vals = gen;
        nvals = sizeof gen / sizeof gen[0];
    } else if (!strcmp(fn, "idx_cost")) {
        vals = cost;
        nvals = sizeof cost / sizeof cost[0];
    } else {
        return s_fail(ps, line, PCF_ERR_PARSE, "unsupported function '%s'", fn);
    }
    if (s_peek(ps) == '(' && s_peek_at(ps, 1) == ')')
        ps->p += 2;
    if (n > nvals)
        return s_fail(ps, line, PCF_ERR_INVALID, "%s has only %zu outputs, %zu requested", fn,
                      nvals, n);
    for (size_t i = 0; i < n; i++)
        if (names[i][0] && (rc = s_var_set(ps, names[i], vals[i], line)) != PCF_OK)
            return rc;
    return PCF_OK;
}

/* function OUT = NAME  |  function NAME */
static pcf_rc s_function(s_parser *ps)
{
    char a[S_MAX_IDENT + 1], b[S_MAX_IDENT + 1];
    pcf_rc rc;
    if (ps->nstmt > 0)
        return s_fail(ps, ps->line, PCF_ERR_PARSE, "only one function header, first, is supported");
    if ((rc = s_skip_blank(ps)) != PCF_OK || (rc = s_ident(ps, a)) != PCF_OK ||
        (rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (s_take_assign(ps)) {
        if ((rc = s_skip_blank(ps)) != PCF_OK || (rc = s_ident(ps, b)) != PCF_OK)
            return rc;
        if (s_is_keyword(a) || s_is_keyword(b))
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "a keyword cannot name a function");
        memcpy(ps->out, a, sizeof a);
        memcpy(ps->c->name, b, strlen(b) + 1);
    } else {
        if (s_is_keyword(a))
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "a keyword cannot name a function");
        memcpy(ps->c->name, a, strlen(a) + 1);
    }
    if (s_peek(ps) == '(' && s_peek_at(ps, 1) == ')')
        ps->p += 2;
    ps->seen_function = 1;
    return PCF_OK;
}

/* OUT.field ... */
static pcf_rc s_field_statement(s_parser *ps)
{
    char field[S_MAX_IDENT + 1];
    unsigned line = ps->line;
    pcf_rc rc;
    ps->p++;                            /* '.' */
    if ((rc = s_ident(ps, field)) != PCF_OK)
        return rc;
    int t = s_table_index(field);
    int known = t >= 0 || !strcmp(field, "baseMVA") || !strcmp(field, "version") ||
                !strcmp(field, "bus_name");
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (t >= 0 && s_peek(ps) == '(')
        return s_block_assign(ps, t);
    if (!known)
        return s_skip_statement(ps);    /* mpc.areas = [...], mpc.x.y = ... */
    if (!s_take_assign(ps))
        return s_fail(ps, line, PCF_ERR_PARSE, "unsupported statement on %s.%s", ps->out, field);
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    int ch = s_peek(ps);
    if (t >= 0) {
        if (ch != '[')
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s.%s: expected '['", ps->out, field);
        return s_matrix(ps, t);
    }
    if (!strcmp(field, "bus_name")) {
        if (ch != '{')
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "%s.bus_name: expected '{'", ps->out);
        return s_cell(ps);
    }
    if (!strcmp(field, "version")) {
        char *s = NULL;
        if ((rc = s_string(ps, 0, &s)) != PCF_OK)
            return rc;
        int ok = strcmp(s, "2") == 0;
        free(s);
        if (!ok)
            return s_fail(ps, line, PCF_ERR_INVALID, "only MATPOWER case format version '2' is supported");
        memcpy(ps->c->version, "2", 2);
        return PCF_OK;
    }
    if ((rc = s_scalar_expr(ps, &ps->c->base_mva)) != PCF_OK)
        return rc;
    ps->base_line = line;
    return PCF_OK;
}

/* NAME = EXPR */
static pcf_rc s_scalar_assign(s_parser *ps, const char *name, unsigned line)
{
    double v;
    pcf_rc rc = s_scalar_expr(ps, &v);
    if (rc)
        return rc;
    return s_var_set(ps, name, v, line);
}

static pcf_rc s_statement(s_parser *ps)
{
    unsigned line = ps->line;
    char name[S_MAX_IDENT + 1], b[32];
    pcf_rc rc;
    if (ps->seen_end)
        return s_fail(ps, line, PCF_ERR_PARSE, "code after the end of the function");
    if (s_peek(ps) == '[')
        return s_idx_assign(ps);
    if (!s_is_ident_start(s_peek(ps)))
        return s_fail(ps, line, PCF_ERR_PARSE, "unsupported statement starting with '%s'",
                      s_show(ps->p, 1, b, sizeof b));
    if ((rc = s_ident(ps, name)) != PCF_OK)
        return rc;
    if (!strcmp(name, "function"))
        return s_function(ps);
    if ((!strcmp(name, "end") || !strcmp(name, "endfunction")) && ps->seen_function) {
        ps->seen_end = 1;
        return PCF_OK;
    }
    if (!strcmp(name, ps->out) && s_peek(ps) == '.')
        return s_field_statement(ps);
    if (s_is_keyword(name))
        return s_fail(ps, line, PCF_ERR_PARSE, "unsupported statement '%s'", name);
    if ((rc = s_skip_blank(ps)) != PCF_OK)
        return rc;
    if (s_take_assign(ps))
        return s_scalar_assign(ps, name, line);
    return s_fail(ps, line, PCF_ERR_PARSE, "unsupported statement '%s'", name);
}

/* ---- validation ------------------------------------------------------------------ */

/* Open-addressing map from bus id (an integer) to bus row. */
typedef struct s_busmap {
    long *key;
    size_t *row;
    size_t mask;
} s_busmap;

static size_t s_hash(long k, size_t mask)
{
    return (size_t)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

/* Inserts; returns the row already holding k, or (size_t)-1 if new. */
static size_t s_busmap_put(s_busmap *m, long k, size_t row)
{
    size_t i = s_hash(k, m->mask);
    while (m->key[i] != 0) {
        if (m->key[i] == k)
            return m->row[i];
        i = (i + 1) & m->mask;
    }
    m->key[i] = k;
    m->row[i] = row;
    return (size_t)-1;
}

static int s_busmap_has(const s_busmap *m, double id)
{
    if (!(id >= 1 && id <= S_MAX_BUS_ID && id == floor(id)))
        return 0;
    long k = (long)id;
    size_t i = s_hash(k, m->mask);
    while (m->key[i] != 0) {
        if (m->key[i] == k)
            return 1;
        i = (i + 1) & m->mask;
    }
    return 0;
}

/* What a column may hold: 0 any double, 1 not NaN, 2 finite. */
static int s_col_rule(int t, size_t col)
{
    switch (t) {
    case S_BUS:
        if (col >= MP_BUS_NCOLS_MIN)
            return 0;
        return (col == MP_VMAX || col == MP_VMIN) ? 1 : 2;
    case S_GEN:
        if (col >= MP_GEN_NCOLS_MIN)
            return 0;
        return (col == MP_QMAX || col == MP_QMIN || col == MP_PMAX || col == MP_PMIN) ? 1 : 2;
    case S_BRANCH:
        if (col >= MP_BRANCH_NCOLS_MIN)
            return 0;
        return (col == MP_RATE_A || col == MP_RATE_B || col == MP_RATE_C ||
                col == MP_ANGMIN || col == MP_ANGMAX) ? 1 : 2;
    default:
        return 0;
    }
}

static pcf_rc s_check_values(s_parser *ps, int t)
{
    const mp_matrix *m = s_table(ps->c, t);
    static const char *const col_names[S_NTABLES] = { "bus", "gen", "branch", "gencost" };
    for (size_t r = 0; r < m->rows; r++) {
        for (size_t col = 0; col < m->cols; col++) {
            int rule = s_col_rule(t, col);
            double v = MP_AT(m, r, col);
            if ((rule == 1 && isnan(v)) || (rule == 2 && !isfinite(v)))
                return s_fail(ps, ps->row_line[t][r], PCF_ERR_INVALID,
                              "%s row %zu column %zu must be %s", col_names[t], r + 1, col + 1,
                              rule == 1 ? "a number (not NaN)" : "finite");
        }
    }
    return PCF_OK;
}

static pcf_rc s_check_shape(s_parser *ps, int t, size_t min_cols, int required, unsigned eof)
{
    const mp_matrix *m = s_table(ps->c, t);
    if (!ps->def_line[t]) {
        if (!required)
            return PCF_OK;
        return s_fail(ps, eof, PCF_ERR_INVALID, "no %s.%s in the file", ps->out, s_table_names[t]);
    }
    if (m->rows > 0 && m->cols < min_cols)
        return s_fail(ps, ps->def_line[t], PCF_ERR_INVALID,
                      "%s.%s has %zu columns, MATPOWER needs at least %zu", ps->out,
                      s_table_names[t], m->cols, min_cols);
    return s_check_values(ps, t);
}

static pcf_rc s_check_buses(s_parser *ps, s_busmap *map)
{
    const mp_matrix *bus = &ps->c->bus;
    for (size_t r = 0; r < bus->rows; r++) {
        double id = MP_AT(bus, r, MP_BUS_I), type = MP_AT(bus, r, MP_BUS_TYPE);
        unsigned line = ps->row_line[S_BUS][r];
        if (!(id >= 1 && id <= S_MAX_BUS_ID && id == floor(id)))
            return s_fail(ps, line, PCF_ERR_INVALID,
                          "bus row %zu: bus number %.17g is not an integer in 1..2147483647",
                          r + 1, id);
        size_t prev = s_busmap_put(map, (long)id, r);
        if (prev != (size_t)-1)
            return s_fail(ps, line, PCF_ERR_INVALID, "bus row %zu: bus number %ld repeats row %zu",
                          r + 1, (long)id, prev + 1);
        if (!(type == MP_PQ || type == MP_PV || type == MP_REF || type == MP_NONE))
            return s_fail(ps, line, PCF_ERR_INVALID, "bus %ld: type %.17g is not 1, 2, 3 or 4",
                          (long)id, type);
    }
    return PCF_OK;
}

static pcf_rc s_check_refs(s_parser *ps, const s_busmap *map)
{
    const mp_case *c = ps->c;
    for (size_t r = 0; r < c->gen.rows; r++) {
        double b = MP_AT(&c->gen, r, MP_GEN_BUS);
        if (!s_busmap_has(map, b))
            return s_fail(ps, ps->row_line[S_GEN][r], PCF_ERR_INVALID,
                          "gen row %zu: bus %.17g does not exist", r + 1, b);
    }
    for (size_t r = 0; r < c->branch.rows; r++) {
        double f = MP_AT(&c->branch, r, MP_F_BUS), t = MP_AT(&c->branch, r, MP_T_BUS);
        if (!s_busmap_has(map, f) || !s_busmap_has(map, t))
            return s_fail(ps, ps->row_line[S_BRANCH][r], PCF_ERR_INVALID,
                          "branch row %zu: bus %.17g does not exist", r + 1,
                          s_busmap_has(map, f) ? t : f);
    }
    return PCF_OK;
}

static pcf_rc s_validate(s_parser *ps)
{
    mp_case *c = ps->c;
    /* "missing" errors name the last line of the file */
    unsigned eof = ps->line > 1 && ps->end[-1] == '\n' ? ps->line - 1 : ps->line;
    pcf_rc rc;
    if ((rc = s_check_shape(ps, S_BUS, MP_BUS_NCOLS_MIN, 1, eof)) != PCF_OK ||
        (rc = s_check_shape(ps, S_GEN, MP_GEN_NCOLS_MIN, 1, eof)) != PCF_OK ||
        (rc = s_check_shape(ps, S_BRANCH, MP_BRANCH_NCOLS_REQUIRED, 1, eof)) != PCF_OK ||
        (rc = s_check_shape(ps, S_GENCOST, 0, 0, eof)) != PCF_OK)
        return rc;
    if (c->bus.rows == 0)
        return s_fail(ps, ps->def_line[S_BUS], PCF_ERR_INVALID, "%s.bus has no rows", ps->out);
    if (!ps->base_line)
        return s_fail(ps, eof, PCF_ERR_INVALID, "no %s.baseMVA in the file", ps->out);
    if (!(c->base_mva > 0 && isfinite(c->base_mva)))
        return s_fail(ps, ps->base_line, PCF_ERR_INVALID, "baseMVA %.17g is not a positive number",
                      c->base_mva);
    if (ps->bus_name_line && c->bus_name_count != c->bus.rows)
        return s_fail(ps, ps->bus_name_line, PCF_ERR_INVALID,
                      "bus_name has %zu names for %zu buses", c->bus_name_count, c->bus.rows);

    s_busmap map;
    size_t size = 16;
    while (size < 2 * c->bus.rows)
        size *= 2;
    map.mask = size - 1;
    map.key = calloc(size, sizeof *map.key);
    map.row = malloc(size * sizeof *map.row);
    if (!map.key || !map.row)
        rc = s_fail(ps, eof, PCF_ERR_NOMEM, "out of memory");
    else if ((rc = s_check_buses(ps, &map)) == PCF_OK)
        rc = s_check_refs(ps, &map);
    free(map.key);
    free(map.row);
    return rc;
}

/* ---- public API ---------------------------------------------------------------- */

static mp_case *s_case_alloc(void)
{
    mp_case *c = calloc(1, sizeof *c);
    if (c)
        memcpy(c->version, "2", 2);
    return c;
}

static pcf_rc s_run(s_parser *ps)
{
    pcf_rc rc;
    for (;;) {
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        int ch = s_peek(ps);
        if (ch < 0)
            break;
        if (ch == '\n') {
            ps->p++;
            ps->line++;
            continue;
        }
        if (ch == ';' || ch == ',') {
            ps->p++;
            continue;
        }
        if ((rc = s_statement(ps)) != PCF_OK)
            return rc;
        ps->nstmt++;
        if ((rc = s_skip_blank(ps)) != PCF_OK)
            return rc;
        ch = s_peek(ps);
        if (ch >= 0 && ch != '\n' && ch != ';' && ch != ',') {
            char b[32];
            return s_fail(ps, ps->line, PCF_ERR_PARSE, "unexpected '%s' after the statement",
                          s_show(ps->p, 1, b, sizeof b));
        }
    }
    return s_validate(ps);
}

mp_case *mp_case_parse(const char *text, size_t len, const char *source, pcf_error *err)
{
    s_parser ps;
    memset(&ps, 0, sizeof ps);
    ps.src = source ? source : "<memory>";
    ps.p = text;
    ps.end = text + len;
    ps.line = 1;
    ps.err = err;
    memcpy(ps.out, "mpc", 4);
    if (!text && len > 0) {
        pcf_error_set(err, PCF_ERR_INTERNAL, "%s: no text", ps.src);
        return NULL;
    }
    if (len > MP_MAX_FILE_BYTES) {
        s_fail(&ps, 1, PCF_ERR_INVALID, "larger than %u bytes", MP_MAX_FILE_BYTES);
        return NULL;
    }
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i == len) {
        s_fail(&ps, 1, PCF_ERR_PARSE, "empty file");
        return NULL;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ps.p += 3;                      /* UTF-8 byte order mark from Windows editors */
    ps.c = s_case_alloc();
    if (!ps.c) {
        s_fail(&ps, 1, PCF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pcf_rc rc = s_run(&ps);
    for (int t = 0; t < S_NTABLES; t++)
        free(ps.row_line[t]);
    if (rc) {
        mp_case_destroy(&ps.c);
        return NULL;
    }
    pcf_error_clear(err);
    return ps.c;
}

mp_case *mp_case_read(const char *path, pcf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        pcf_error_set(err, PCF_ERR_IO, "%s:0: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* Read in chunks rather than trusting st_size: pipes have none. */
    size_t cap = 1 << 16, n = 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        if ((uint64_t)st.st_size > MP_MAX_FILE_BYTES) {
            pcf_error_set(err, PCF_ERR_INVALID, "%s:0: larger than %u bytes", path,
                          MP_MAX_FILE_BYTES);
            fclose(f);
            return NULL;
        }
        cap = (size_t)st.st_size + 1;
    }
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            pcf_error_set(err, PCF_ERR_NOMEM, "%s:0: out of memory", path);
            fclose(f);
            return NULL;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n > MP_MAX_FILE_BYTES) {
            pcf_error_set(err, PCF_ERR_INVALID, "%s:0: larger than %u bytes", path,
                          MP_MAX_FILE_BYTES);
            free(buf);
            fclose(f);
            return NULL;
        }
        if (n < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        pcf_error_set(err, PCF_ERR_IO, "%s:0: read error", path);
        free(buf);
        return NULL;
    }
    mp_case *c = mp_case_parse(buf, n, path, err);
    free(buf);
    return c;
}

mp_case *mp_case_new(size_t nbus, size_t bus_cols, size_t ngen, size_t gen_cols,
                     size_t nbranch, size_t branch_cols)
{
    size_t rows[3] = { nbus, ngen, nbranch }, cols[3] = { bus_cols, gen_cols, branch_cols };
    mp_case *c = s_case_alloc();
    if (!c)
        return NULL;
    c->base_mva = 100.0;
    for (int t = 0; t < 3; t++) {
        mp_matrix *m = s_table(c, t);
        if (rows[t] > MP_MAX_ROWS || cols[t] > MP_MAX_COLS) {
            mp_case_destroy(&c);
            return NULL;
        }
        m->rows = rows[t];
        m->cols = cols[t];
        if (rows[t] && cols[t]) {
            m->v = calloc(rows[t] * cols[t], sizeof *m->v);
            if (!m->v) {
                mp_case_destroy(&c);
                return NULL;
            }
        }
    }
    return c;
}

void mp_case_destroy(mp_case **cp)
{
    if (!cp || !*cp)
        return;
    mp_case *c = *cp;
    free(c->bus.v);
    free(c->gen.v);
    free(c->branch.v);
    free(c->gencost.v);
    for (size_t i = 0; i < c->bus_name_count; i++)
        free(c->bus_name[i]);
    free(c->bus_name);
    free(c);
    *cp = NULL;
}

long mp_case_bus_row(const mp_case *c, double bus_i)
{
    if (!c || !c->bus.v || c->bus.cols <= MP_BUS_I)
        return -1;
    for (size_t r = 0; r < c->bus.rows; r++)
        if (MP_AT(&c->bus, r, MP_BUS_I) == bus_i)
            return (long)r;
    return -1;
}

/* ---- writer ------------------------------------------------------------------------ */

/* One value as Octave spells it; %.17g round-trips every finite double. */
static void s_put_value(FILE *out, double v)
{
    if (isnan(v))
        fputs("NaN", out);
    else if (isinf(v))
        fputs(v > 0 ? "Inf" : "-Inf", out);
    else
        fprintf(out, "%.17g", v);
}

static void s_put_matrix(FILE *out, const char *field, const mp_matrix *m)
{
    fprintf(out, "mpc.%s = [\n", field);
    for (size_t r = 0; r < m->rows && m->cols > 0 && m->v; r++) {
        for (size_t col = 0; col < m->cols; col++) {
            fputc('\t', out);
            s_put_value(out, MP_AT(m, r, col));
        }
        fputs(";\n", out);
    }
    fputs("];\n\n", out);
}

static int s_valid_name(const char *s)
{
    size_t n = strnlen(s, sizeof ((mp_case *)0)->name);
    if (n == 0 || n > S_MAX_IDENT || !s_is_ident_start((unsigned char)s[0]) || s_is_keyword(s))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!s_is_ident((unsigned char)s[i]))
            return 0;
    return 1;
}

static void s_put_bus_names(FILE *out, const mp_case *c)
{
    fputs("mpc.bus_name = {\n", out);
    for (size_t i = 0; i < c->bus_name_count; i++) {
        const char *s = c->bus_name[i] ? c->bus_name[i] : "";
        fputs("\t'", out);
        for (; *s; s++) {
            if (*s == '\'')
                fputc('\'', out);
            fputc(*s, out);
        }
        fputs("';\n", out);
    }
    fputs("};\n", out);
}

pcf_rc mp_case_write(const mp_case *c, FILE *out, pcf_error *err)
{
    if (!c || !out)
        return pcf_error_set(err, PCF_ERR_INTERNAL, "mp_case_write: no case or stream");
    for (size_t i = 0; i < c->bus_name_count; i++)
        if (c->bus_name[i] && strpbrk(c->bus_name[i], "\r\n"))
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "mp_case_write: bus_name %zu has a line break", i + 1);
    /* %.17g must print '.', whatever locale the program chose. */
    locale_t cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (cloc == (locale_t)0)
        return pcf_error_set(err, PCF_ERR_NOMEM, "mp_case_write: no C locale");
    locale_t old = uselocale(cloc);

    const char *name = s_valid_name(c->name) ? c->name : "mpc_case";
    fprintf(out, "function mpc = %s\n", name);
    fprintf(out, "%%%s  MATPOWER case written by pcf (common/mpcase.c)\n\n", name);
    fputs("%% MATPOWER Case Format : Version 2\nmpc.version = '2';\n\n", out);
    fputs("%%-----  Power Flow Data  -----%%\n%% system MVA base\nmpc.baseMVA = ", out);
    s_put_value(out, c->base_mva);
    fputs(";\n\n%% bus data\n", out);
    s_put_matrix(out, "bus", &c->bus);
    fputs("%% generator data\n", out);
    s_put_matrix(out, "gen", &c->gen);
    fputs("%% branch data\n", out);
    s_put_matrix(out, "branch", &c->branch);
    if (c->gencost.rows > 0) {
        fputs("%%-----  OPF Data  -----%%\n%% generator cost data\n", out);
        s_put_matrix(out, "gencost", &c->gencost);
    }
    if (c->bus_name)
        s_put_bus_names(out, c);

    uselocale(old);
    freelocale(cloc);
    if (fflush(out) != 0 || ferror(out))
        return pcf_error_set(err, PCF_ERR_IO, "mp_case_write: write failed: %s", strerror(errno));
    return PCF_OK;
}
