/*
 * mpcase.h -- MATPOWER case files (format version 2): read, write, free.
 *
 * A case is kept exactly as MATPOWER holds it: each table (bus, gen, branch,
 * gencost) is a dense row-major matrix of doubles with every column the file
 * had, extra columns (OPF results, user columns) included, so writing a case
 * back reproduces every number.  Column meanings follow MATPOWER's idx_bus,
 * idx_gen and idx_brch (0-based here: MP_BUS_I is column 0).  Bus numbers are
 * labels, not indices.  Nothing here interprets the network: the power-flow
 * code builds its own indexed model from a case.
 *
 * The reader accepts what real case files contain: `function mpc = name`,
 * `%` comments, `...` continuations, rows separated by `;` or newlines,
 * scientific notation, Inf/NaN, optional sections (gencost, bus_name as a cell
 * array of quoted strings, unknown `mpc.x = ...` fields, which are skipped),
 * and the small post-processing idioms of MATPOWER's distribution cases
 * (case33bw, case69): `[..] = idx_bus;` constant lists, scalar assignments and
 * `mpc.T(:, [COLS]) = mpc.T(:, [COLS]) op expr;` column scaling.
 * A bad file yields PCF_ERR_PARSE / PCF_ERR_INVALID with "source:line: reason".
 *
 * What a successfully read case guarantees (checked by the reader, not by
 * mp_case_new): bus has >= 13 columns and at least one row, gen >= 10 and
 * branch >= 11 columns when they have rows, every table is rectangular;
 * bus ids are unique integers in 1..2^31-1; bus types are 1..4; every gen
 * bus and branch end names an existing bus; the required columns hold no
 * NaN and are finite except the limit columns (VMAX, VMIN, QMAX, QMIN,
 * PMAX, PMIN, RATE_A/B/C, ANGMIN, ANGMAX), which may be +-Inf; status
 * columns may hold any finite value (MATPOWER: > 0 means in service);
 * baseMVA > 0; bus_name, when present, has exactly bus.rows names.  Extra
 * columns and gencost are kept as written (NaN/Inf allowed).
 *
 * Ownership: mp_case_read/mp_case_parse return a case the caller owns and
 * frees with mp_case_destroy, which NULLs the caller's pointer.
 */
#ifndef PCF_MPCASE_H
#define PCF_MPCASE_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* bus columns */
enum { MP_BUS_I, MP_BUS_TYPE, MP_PD, MP_QD, MP_GS, MP_BS, MP_BUS_AREA, MP_VM,
       MP_VA, MP_BASE_KV, MP_ZONE, MP_VMAX, MP_VMIN, MP_BUS_NCOLS_MIN };
/* bus types */
enum { MP_PQ = 1, MP_PV = 2, MP_REF = 3, MP_NONE = 4 };
/* gen columns */
enum { MP_GEN_BUS, MP_PG, MP_QG, MP_QMAX, MP_QMIN, MP_VG, MP_MBASE,
       MP_GEN_STATUS, MP_PMAX, MP_PMIN, MP_GEN_NCOLS_MIN };
/* branch columns */
enum { MP_F_BUS, MP_T_BUS, MP_BR_R, MP_BR_X, MP_BR_B, MP_RATE_A, MP_RATE_B,
       MP_RATE_C, MP_TAP, MP_SHIFT, MP_BR_STATUS, MP_ANGMIN, MP_ANGMAX,
       MP_BRANCH_NCOLS_MIN };
/* Columns 0..MP_BR_STATUS (11) are required in a branch table; ANGMIN/ANGMAX
 * are optional as in MATPOWER (treated as -360/360 when absent). */
#define MP_BRANCH_NCOLS_REQUIRED 11

typedef struct mp_matrix {
    size_t rows, cols;
    double *v;              /* rows*cols values, row-major; NULL when empty */
} mp_matrix;

#define MP_AT(m, r, c) ((m)->v[(size_t)(r) * (m)->cols + (size_t)(c)])

typedef struct mp_case {
    char name[128];         /* from `function mpc = name`, or "" */
    char version[16];       /* mpc.version, "2" */
    double base_mva;        /* mpc.baseMVA */
    mp_matrix bus, gen, branch, gencost;   /* gencost may be empty */
    char **bus_name;        /* NULL or bus.rows strings (mpc.bus_name) */
    size_t bus_name_count;
} mp_case;

/* Limits that keep hostile input from exhausting memory. */
#define MP_MAX_FILE_BYTES   (256u << 20)   /* 256 MiB */
#define MP_MAX_COLS         64
#define MP_MAX_ROWS         2000000

/* Reads and validates a case file.  NULL on error (err says why). */
mp_case *mp_case_read(const char *path, pcf_error *err);

/* Parses a case held in memory; `source` names it in error messages. */
mp_case *mp_case_parse(const char *text, size_t len, const char *source,
                       pcf_error *err);

/* Writes the case in MATPOWER format v2, every value with %.17g so reading
 * it back gives identical doubles.  Returns PCF_OK or PCF_ERR_IO. */
pcf_rc mp_case_write(const mp_case *c, FILE *out, pcf_error *err);

/* Allocates an empty case with zeroed tables of the given shapes (used by
 * pcf-db export and by tests that build networks by hand): version "2",
 * baseMVA 100, name "", no gencost, no bus names.  NULL when out of memory
 * or a shape exceeds MP_MAX_ROWS / MP_MAX_COLS. */
mp_case *mp_case_new(size_t nbus, size_t bus_cols, size_t ngen, size_t gen_cols,
                     size_t nbranch, size_t branch_cols);

/* Frees the case and sets *c to NULL; safe on NULL and twice. */
void mp_case_destroy(mp_case **c);

/* Row index of the bus labelled `bus_i`, or -1. Linear scan: callers that
 * need many look-ups build their own map. */
long mp_case_bus_row(const mp_case *c, double bus_i);

#endif
