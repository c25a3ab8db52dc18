/*
 * test_mpcase.c -- the MATPOWER case reader/writer against MATPOWER's own
 * cases and solutions (tests/data/matpower), bit-exact round trips, and
 * hostile inputs that must fail with the right code and line number.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpcase.h"
#include "parse.h"

#define CASES "tests/data/matpower/cases/"
#define SOLS "tests/data/matpower/solutions/"

typedef struct s_expect_case {
    const char *name;
    size_t nbus, bus_cols, ngen, gen_cols, nbranch, branch_cols, ngencost, gencost_cols;
    size_t names;
    int has_solution;
} s_expect_case;

/* Row and column counts counted independently (awk over the files). */
static const s_expect_case s_cases[] = {
    { "case9", 9, 13, 3, 21, 9, 13, 3, 7, 0, 1 },
    { "case14", 14, 13, 5, 21, 20, 13, 5, 7, 14, 1 },
    { "case24_ieee_rts", 24, 13, 33, 21, 38, 13, 33, 7, 0, 1 },
    { "case30", 30, 13, 6, 21, 41, 13, 6, 7, 0, 1 },
    { "case33bw", 33, 13, 1, 21, 37, 13, 1, 7, 0, 1 },
    { "case39", 39, 13, 10, 21, 46, 13, 10, 7, 0, 1 },
    { "case57", 57, 13, 7, 21, 80, 13, 7, 7, 57, 1 },
    { "case69", 69, 13, 1, 21, 68, 13, 1, 7, 0, 1 },
    { "case_ieee30", 30, 13, 6, 21, 41, 13, 6, 7, 30, 1 },
    { "case118", 118, 13, 54, 21, 186, 13, 54, 7, 118, 0 },
    { "case300", 300, 13, 69, 21, 411, 13, 69, 7, 0, 0 },
    { "case1354pegase", 1354, 13, 260, 21, 1991, 13, 260, 7, 0, 0 },
    { "case2383wp", 2383, 13, 327, 21, 2896, 13, 327, 7, 0, 0 },
    { "case2869pegase", 2869, 13, 510, 21, 4582, 13, 510, 7, 0, 0 },
};
#define S_NCASES (sizeof s_cases / sizeof s_cases[0])

static mp_case *s_load(const char *name)
{
    char path[256];
    pcf_error err = { 0 };
    snprintf(path, sizeof path, CASES "%s.m", name);
    mp_case *c = mp_case_read(path, &err);
    cr_assert_not_null(c, "%s: %s", path, err.msg);
    return c;
}

/* Data lines of a CSV file (header excluded); -1 if it cannot be opened. */
static long s_csv_rows(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    int ch, prev = '\n';
    if (!f)
        return -1;
    while ((ch = fgetc(f)) != EOF) {
        if (ch == '\n')
            n++;
        prev = ch;
    }
    if (prev != '\n')
        n++;
    fclose(f);
    return n - 1;
}

static int s_same_double(double a, double b)
{
    if (isnan(a) && isnan(b))
        return 1;
    return memcmp(&a, &b, sizeof a) == 0;
}

static void s_assert_same_matrix(const mp_matrix *a, const mp_matrix *b, const char *what)
{
    cr_assert_eq(a->rows, b->rows, "%s rows", what);
    cr_assert_eq(a->cols, b->cols, "%s cols", what);
    for (size_t i = 0; i < a->rows * a->cols; i++)
        cr_assert(s_same_double(a->v[i], b->v[i]), "%s value %zu: %.17g != %.17g", what, i,
                  a->v[i], b->v[i]);
}

static void s_assert_same_case(const mp_case *a, const mp_case *b)
{
    cr_assert_str_eq(a->name, b->name);
    cr_assert_str_eq(a->version, b->version);
    cr_assert(s_same_double(a->base_mva, b->base_mva));
    s_assert_same_matrix(&a->bus, &b->bus, "bus");
    s_assert_same_matrix(&a->gen, &b->gen, "gen");
    s_assert_same_matrix(&a->branch, &b->branch, "branch");
    s_assert_same_matrix(&a->gencost, &b->gencost, "gencost");
    cr_assert_eq(a->bus_name_count, b->bus_name_count);
    for (size_t i = 0; i < a->bus_name_count; i++)
        cr_assert_str_eq(a->bus_name[i], b->bus_name[i]);
}

/* Writes c to memory and reads it back. */
static mp_case *s_round_trip(const mp_case *c, char **text_out)
{
    char *buf = NULL;
    size_t len = 0;
    pcf_error err = { 0 };
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(mp_case_write(c, f, &err), PCF_OK, "%s", err.msg);
    fclose(f);
    mp_case *d = mp_case_parse(buf, len, "roundtrip", &err);
    cr_assert_not_null(d, "%s", err.msg);
    if (text_out)
        *text_out = buf;
    else
        free(buf);
    return d;
}

Test(mpcase, every_case_loads_with_right_shape)
{
    for (size_t i = 0; i < S_NCASES; i++) {
        const s_expect_case *x = &s_cases[i];
        mp_case *c = s_load(x->name);
        cr_assert_str_eq(c->name, x->name);
        cr_assert_str_eq(c->version, "2");
        cr_assert(c->base_mva > 0);
        cr_assert_eq(c->bus.rows, x->nbus, "%s bus rows", x->name);
        cr_assert_eq(c->bus.cols, x->bus_cols, "%s bus cols", x->name);
        cr_assert_eq(c->gen.rows, x->ngen, "%s gen rows", x->name);
        cr_assert_eq(c->gen.cols, x->gen_cols, "%s gen cols", x->name);
        cr_assert_eq(c->branch.rows, x->nbranch, "%s branch rows", x->name);
        cr_assert_eq(c->branch.cols, x->branch_cols, "%s branch cols", x->name);
        cr_assert_eq(c->gencost.rows, x->ngencost, "%s gencost rows", x->name);
        cr_assert_eq(c->gencost.cols, x->gencost_cols, "%s gencost cols", x->name);
        cr_assert_eq(c->bus_name_count, x->names, "%s bus names", x->name);
        cr_assert_eq(c->bus_name == NULL, x->names == 0);
        if (x->has_solution) {
            char path[256];
            snprintf(path, sizeof path, SOLS "%s_bus.csv", x->name);
            cr_assert_eq(s_csv_rows(path), (long)c->bus.rows, "%s", path);
            snprintf(path, sizeof path, SOLS "%s_gen.csv", x->name);
            cr_assert_eq(s_csv_rows(path), (long)c->gen.rows, "%s", path);
            snprintf(path, sizeof path, SOLS "%s_branch.csv", x->name);
            cr_assert_eq(s_csv_rows(path), (long)c->branch.rows, "%s", path);
        }
        mp_case_destroy(&c);
        cr_assert_null(c);
    }
}

Test(mpcase, known_values)
{
    mp_case *c = s_load("case9");
    cr_assert_eq(c->base_mva, 100.0);
    cr_assert_eq(MP_AT(&c->bus, 0, MP_BUS_TYPE), (double)MP_REF);
    cr_assert_eq(MP_AT(&c->bus, 4, MP_PD), 90.0);
    cr_assert_eq(MP_AT(&c->branch, 0, MP_BR_X), 0.0576);
    cr_assert_eq(MP_AT(&c->gen, 1, MP_GEN_BUS), 2.0);
    cr_assert_eq(mp_case_bus_row(c, 5), 4);
    cr_assert_eq(mp_case_bus_row(c, 10), -1);
    mp_case_destroy(&c);
    mp_case_destroy(&c);     /* twice is harmless */
    mp_case_destroy(NULL);

    /* Inf in generator limits (pegase) is kept as Inf */
    c = s_load("case2869pegase");
    int found = 0;
    for (size_t r = 0; r < c->gen.rows; r++)
        if (isinf(MP_AT(&c->gen, r, MP_QMAX)) && MP_AT(&c->gen, r, MP_QMAX) > 0 &&
            isinf(MP_AT(&c->gen, r, MP_QMIN)) && MP_AT(&c->gen, r, MP_QMIN) < 0)
            found++;
    cr_assert_gt(found, 0);
    mp_case_destroy(&c);
}

/* Pd/Qd after the file's kW -> MW conversion equal MATPOWER's bit for bit. */
static void s_check_converted(const char *name, double kv, double base_mva)
{
    char path[256];
    mp_case *c = s_load(name);
    snprintf(path, sizeof path, SOLS "%s_bus.csv", name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char line[1024];
    cr_assert_not_null(fgets(line, sizeof line, f));   /* header */
    size_t r = 0;
    while (fgets(line, sizeof line, f)) {
        /* bus_i,type,Pd_MW,Qd_MVAr,... */
        char *field[4];
        size_t flen[4];
        char *p = line;
        for (int k = 0; k < 4; k++) {
            char *comma = strchr(p, ',');
            cr_assert_not_null(comma);
            field[k] = p;
            flen[k] = (size_t)(comma - p);
            p = comma + 1;
        }
        double id, pd, qd;
        cr_assert_eq(parse_double(field[0], flen[0], &id), PCF_OK);
        cr_assert_eq(parse_double(field[2], flen[2], &pd), PCF_OK);
        cr_assert_eq(parse_double(field[3], flen[3], &qd), PCF_OK);
        cr_assert_lt(r, c->bus.rows);
        cr_assert_eq(MP_AT(&c->bus, r, MP_BUS_I), id);
        cr_assert(s_same_double(MP_AT(&c->bus, r, MP_PD), pd), "%s bus %g Pd %.17g != %.17g",
                  name, id, MP_AT(&c->bus, r, MP_PD), pd);
        cr_assert(s_same_double(MP_AT(&c->bus, r, MP_QD), qd), "%s bus %g Qd %.17g != %.17g",
                  name, id, MP_AT(&c->bus, r, MP_QD), qd);
        r++;
    }
    fclose(f);
    cr_assert_eq(r, c->bus.rows);
    /* r and x: ohms / (Vbase^2 / Sbase), evaluated in Octave's order */
    double zbase = pow(kv * 1e3, 2) / (base_mva * 1e6);
    cr_assert(s_same_double(MP_AT(&c->branch, 0, MP_BR_R), 0.0922 / zbase) ||
              strcmp(name, "case33bw") != 0);
    cr_assert_lt(MP_AT(&c->branch, 0, MP_BR_R), 0.01);   /* was ohms, now p.u. */
    mp_case_destroy(&c);
}

Test(mpcase, distribution_cases_convert_like_matpower)
{
    s_check_converted("case33bw", 12.66, 10);
    s_check_converted("case69", 12.66, 10);
    mp_case *c = s_load("case33bw");
    cr_assert_eq(MP_AT(&c->bus, 1, MP_PD), 100.0 / 1e3);
    cr_assert_eq(MP_AT(&c->bus, 1, MP_PD), 0.10000000000000001);
    mp_case_destroy(&c);
}

Test(mpcase, round_trip_every_case_bit_for_bit)
{
    for (size_t i = 0; i < S_NCASES; i++) {
        mp_case *c = s_load(s_cases[i].name);
        mp_case *d = s_round_trip(c, NULL);
        s_assert_same_case(c, d);
        /* and a second generation is identical too */
        mp_case *e = s_round_trip(d, NULL);
        s_assert_same_case(c, e);
        mp_case_destroy(&c);
        mp_case_destroy(&d);
        mp_case_destroy(&e);
    }
}

Test(mpcase, bus_names_kept_and_quoted)
{
    mp_case *c = s_load("case14");
    cr_assert_str_eq(c->bus_name[0], "Bus 1     HV");
    cr_assert_str_eq(c->bus_name[13], "Bus 14    LV");
    free(c->bus_name[2]);
    c->bus_name[2] = strdup("O'Brien \"x\" % not a comment ...");
    char *text = NULL;
    mp_case *d = s_round_trip(c, &text);
    cr_assert_str_eq(d->bus_name[2], "O'Brien \"x\" % not a comment ...");
    cr_assert_not_null(strstr(text, "function mpc = case14\n"));
    cr_assert_not_null(strstr(text, "'O''Brien"));
    s_assert_same_case(c, d);
    free(text);
    mp_case_destroy(&c);
    mp_case_destroy(&d);
}

Test(mpcase, writer_spells_specials_like_octave)
{
    mp_case *c = mp_case_new(2, 13, 1, 10, 1, 11);
    cr_assert_not_null(c);
    memcpy(c->name, "built", 6);
    for (size_t r = 0; r < 2; r++) {
        MP_AT(&c->bus, r, MP_BUS_I) = (double)(r + 1);
        MP_AT(&c->bus, r, MP_BUS_TYPE) = r == 0 ? MP_REF : MP_PQ;
        MP_AT(&c->bus, r, MP_VMAX) = INFINITY;
        MP_AT(&c->bus, r, MP_VMIN) = -INFINITY;
    }
    MP_AT(&c->bus, 1, MP_PD) = -0.0;
    MP_AT(&c->bus, 1, MP_QD) = 1e-310;          /* subnormal */
    MP_AT(&c->bus, 1, MP_GS) = 0.1 + 0.2;
    MP_AT(&c->bus, 1, MP_BS) = -1.7976931348623157e308;
    MP_AT(&c->gen, 0, MP_GEN_BUS) = 1;
    MP_AT(&c->gen, 0, MP_GEN_STATUS) = 1;
    MP_AT(&c->branch, 0, MP_F_BUS) = 1;
    MP_AT(&c->branch, 0, MP_T_BUS) = 2;
    MP_AT(&c->branch, 0, MP_RATE_A) = INFINITY;
    char *text = NULL;
    mp_case *d = s_round_trip(c, &text);
    cr_assert_not_null(strstr(text, "function mpc = built\n"));
    cr_assert_not_null(strstr(text, "\tInf\t-Inf;"));
    cr_assert_not_null(strstr(text, "0.30000000000000004"));
    cr_assert_null(strstr(text, "gencost"));
    cr_assert(signbit(MP_AT(&d->bus, 1, MP_PD)));
    s_assert_same_case(c, d);
    free(text);
    mp_case_destroy(&d);

    /* NaN outside the required columns is allowed and written as NaN */
    mp_case_destroy(&c);
    c = s_load("case9");
    MP_AT(&c->gen, 0, 15) = NAN;
    d = s_round_trip(c, NULL);
    cr_assert(isnan(MP_AT(&d->gen, 0, 15)));
    mp_case_destroy(&c);
    mp_case_destroy(&d);
}

Test(mpcase, write_failure_is_io)
{
    mp_case *c = s_load("case9");
    FILE *f = fopen("/dev/full", "w");
    cr_assert_not_null(f);
    pcf_error err = { 0 };
    cr_assert_eq(mp_case_write(c, f, &err), PCF_ERR_IO);
    cr_assert_eq(err.code, PCF_ERR_IO);
    fclose(f);
    mp_case_destroy(&c);
}

Test(mpcase, read_missing_file_is_io)
{
    pcf_error err = { 0 };
    cr_assert_null(mp_case_read("tests/data/matpower/cases/no_such_case.m", &err));
    cr_assert_eq(err.code, PCF_ERR_IO);
    cr_assert_not_null(strstr(err.msg, "no_such_case.m"));
}

/* ---- hand-written inputs ------------------------------------------------- */

#define HEAD "function mpc = tiny\n"                         /* line 1 */ \
             "mpc.version = '2';\n"                          /* 2 */      \
             "mpc.baseMVA = 100;\n"                          /* 3 */
#define BUS  "mpc.bus = [\n"                                 /* 4 */      \
             "\t1\t3\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n"   /* 5 */   \
             "\t2\t1\t10\t5\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n"  /* 6 */   \
             "];\n"                                          /* 7 */
#define GEN  "mpc.gen = [\n"                                 /* 8 */      \
             "\t1\t0\t0\t10\t-10\t1\t100\t1\t50\t0;\n"       /* 9 */      \
             "];\n"                                          /* 10 */
#define BR   "mpc.branch = [\n"                              /* 11 */     \
             "\t1\t2\t0.01\t0.1\t0\t0\t0\t0\t0\t0\t1;\n"     /* 12 */     \
             "];\n"                                          /* 13 */

static mp_case *s_parse_ok(const char *text)
{
    pcf_error err = { 0 };
    mp_case *c = mp_case_parse(text, strlen(text), "t.m", &err);
    cr_assert_not_null(c, "unexpected error: %s", err.msg);
    cr_assert_eq(err.code, PCF_OK);
    return c;
}

static void s_parse_bad(const char *text, pcf_rc rc, unsigned line, const char *words)
{
    pcf_error err = { 0 };
    char prefix[32];
    mp_case *c = mp_case_parse(text, strlen(text), "t.m", &err);
    cr_assert_null(c, "accepted: %s", text);
    cr_assert_eq(err.code, rc, "code %d (%s), wanted %d: %s", err.code, err.msg, rc, text);
    snprintf(prefix, sizeof prefix, "t.m:%u: ", line);
    cr_assert_eq(strncmp(err.msg, prefix, strlen(prefix)), 0, "message '%s', wanted line %u",
                 err.msg, line);
    if (words)
        cr_assert_not_null(strstr(err.msg, words), "message '%s' lacks '%s'", err.msg, words);
}

Test(mpcase, minimal_case_parses)
{
    mp_case *c = s_parse_ok(HEAD BUS GEN BR);
    cr_assert_str_eq(c->name, "tiny");
    cr_assert_eq(c->bus.rows, 2);
    cr_assert_eq(c->gen.cols, 10);
    cr_assert_eq(c->branch.cols, 11);
    cr_assert_eq(c->gencost.rows, 0);
    cr_assert_null(c->gencost.v);
    mp_case_destroy(&c);
}

Test(mpcase, syntax_variants)
{
    /* no function line, commas, continuations, comments inside matrices,
     * ';'-separated rows on one line, CRLF, unknown fields of every kind,
     * trailing `end` */
    const char *text =
        "% header comment\r\n"
        "mpc.version = \"2\";  # octave comment\r\n"
        "mpc.baseMVA = 1e2\n"
        "mpc.bus = [ % starts here\n"
        "  1, 3, 0, 0, 0, 0, 1, 1, 0, 11, 1, 1.1, 0.9 ...  continued\n"
        "  ; 2 1 10 5 0 0 1 1 0 11 1 Inf -Inf; % two rows on one line\n"
        "\n"
        "];\n"
        "mpc.gen = [ 1 0 0 10 -10 1 100 1 50 0 ];\n"
        "mpc.branch = [\n"
        "  1 2 0.01 0.1 0 inf 0 0 0 0 1 -360 360\n"
        "];\n"
        "mpc.areas = [ 1 1; 2 2 ];\n"
        "mpc.comment = 'it''s [not] a {matrix}';\n"
        "mpc.names = { 'a', 'b'; 'c', 'd' };\n"
        "mpc.extra.nested = struct('x', [1 2 ...\n"
        "   3]);\n"
        "mpc.scalar = -3;\n"
        "mpc.mixed = [x 'y]' {'z}'}];\n"
        "mpc.esc = \"a\\tb\\\"c]\";\n";
    mp_case *c = s_parse_ok(text);
    cr_assert_str_eq(c->name, "");
    cr_assert_eq(c->bus.rows, 2);
    cr_assert(isinf(MP_AT(&c->bus, 1, MP_VMAX)));
    cr_assert(isinf(MP_AT(&c->branch, 0, MP_RATE_A)));
    cr_assert_eq(c->branch.cols, 13);
    cr_assert_eq(c->gen.rows, 1);
    mp_case_destroy(&c);

    c = s_parse_ok(HEAD BUS GEN BR "end\n");
    mp_case_destroy(&c);
    c = s_parse_ok("\xEF\xBB\xBF" HEAD BUS GEN BR);
    cr_assert_str_eq(c->name, "tiny");
    mp_case_destroy(&c);
}

Test(mpcase, expressions_follow_octave)
{
    /* precedence: -2^2 = -4, 2^3^2 = 64 (left-assoc), unary minus after ^ */
    mp_case *c = s_parse_ok(HEAD BUS GEN BR "x = -2^2;\nmpc.baseMVA = -x * 2^-1 + 2^3^2;\n");
    cr_assert_eq(c->base_mva, 66.0);
    mp_case_destroy(&c);
    c = s_parse_ok(HEAD BUS GEN BR "mpc.baseMVA = (1 + 2) * 3 - 8 / 4 / 2;\n");
    cr_assert_eq(c->base_mva, 8.0);
    mp_case_destroy(&c);
    c = s_parse_ok(HEAD BUS GEN BR "mpc.baseMVA = mpc.bus(2, 3) * mpc.baseMVA;\n");
    cr_assert_eq(c->base_mva, 1000.0);
    mp_case_destroy(&c);
}

Test(mpcase, column_block_assignments)
{
    mp_case *c = s_parse_ok(
        HEAD BUS GEN BR
        "[PQ, PV, REF, NONE, BUS_I, BUS_TYPE, PD, QD, GS, BS, BUS_AREA, VM, ...\n"
        "    VA, BASE_KV, ZONE, VMAX, VMIN, LAM_P, LAM_Q, MU_VMAX, MU_VMIN] = idx_bus;\n"
        "[F_BUS, T_BUS, BR_R, BR_X, BR_B, RATE_A, RATE_B, RATE_C, ...\n"
        "    TAP, SHIFT, BR_STATUS, PF, QF, PT, QT, MU_SF, MU_ST, ...\n"
        "    ANGMIN, ANGMAX, MU_ANGMIN, MU_ANGMAX] = idx_brch;\n"
        "[GEN_BUS, PG, QG, QMAX, QMIN, VG, MBASE, GEN_STATUS, PMAX, PMIN, ...\n"
        "    MU_PMAX, MU_PMIN, MU_QMAX, MU_QMIN, PC1] = idx_gen;\n"
        "Vbase = mpc.bus(1, BASE_KV) * 1e3;\n"
        "Sbase = mpc.baseMVA * 1e6;\n"
        "mpc.branch(:, [BR_R BR_X]) = mpc.branch(:, [BR_R BR_X]) / (Vbase^2 / Sbase);\n"
        "mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3;\n"
        "mpc.bus(:, VMAX) = mpc.bus(:, VMAX) .^ 2 - 1;\n"
        "mpc.gen(:, [PMAX]) = 2 .* mpc.gen(:, [PMAX]) + MU_PMAX - PC1;\n");
    cr_assert_eq(MP_AT(&c->bus, 1, MP_PD), 10.0 / 1e3);
    cr_assert_eq(MP_AT(&c->bus, 1, MP_QD), 5.0 / 1e3);
    double zb = pow(11.0 * 1e3, 2) / (100.0 * 1e6);
    cr_assert_eq(MP_AT(&c->branch, 0, MP_BR_R), 0.01 / zb);
    cr_assert_eq(MP_AT(&c->branch, 0, MP_BR_X), 0.1 / zb);
    cr_assert_eq(MP_AT(&c->branch, 0, MP_BR_B), 0.0);     /* other columns untouched */
    cr_assert_eq(MP_AT(&c->bus, 0, MP_VMAX), 1.1 * 1.1 - 1);
    cr_assert_eq(MP_AT(&c->gen, 0, MP_PMAX), 2 * 50.0 + 22 - 11);
    mp_case_destroy(&c);
}

Test(mpcase, hostile_inputs_name_the_line)
{
    s_parse_bad("", PCF_ERR_PARSE, 1, "empty");
    s_parse_bad("  \n\t\n", PCF_ERR_PARSE, 1, "empty");
    s_parse_bad(HEAD GEN BR, PCF_ERR_INVALID, 9, "no mpc.bus");
    s_parse_bad(HEAD BUS BR, PCF_ERR_INVALID, 10, "no mpc.gen");
    /* ragged row: line 6 has 12 columns */
    s_parse_bad(HEAD "mpc.bus = [\n\t1\t3\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n"
                "\t2\t1\t10\t5\t0\t0\t1\t1\t0\t11\t1\t1.1;\n];\n" GEN BR,
                PCF_ERR_PARSE, 6, "columns");
    /* branch to bus 7 which does not exist (line 12) */
    s_parse_bad(HEAD BUS GEN "mpc.branch = [\n\t1\t7\t0.01\t0.1\t0\t0\t0\t0\t0\t0\t1;\n];\n",
                PCF_ERR_INVALID, 12, "bus 7");
    /* generator at an unknown bus */
    s_parse_bad(HEAD BUS "mpc.gen = [\n\t9\t0\t0\t10\t-10\t1\t100\t1\t50\t0;\n];\n" BR,
                PCF_ERR_INVALID, 9, "bus 9");
    /* duplicate bus id 1 on line 6 */
    s_parse_bad(HEAD "mpc.bus = [\n\t1\t3\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n"
                "\t1\t1\t10\t5\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n];\n" GEN BR,
                PCF_ERR_INVALID, 6, "repeats");
    /* non-numeric token */
    s_parse_bad(HEAD "mpc.bus = [\n\t1\t3\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n"
                "\t2\t1\t10\t5x\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n];\n" GEN BR,
                PCF_ERR_PARSE, 6, "'5x' is not a number");
    s_parse_bad(HEAD "mpc.bus = [\n\t1 3 0 0 0 0 1 1 0 11 1 1.1 0x10;\n];\n" GEN BR,
                PCF_ERR_PARSE, 5, "0x10");
    s_parse_bad(HEAD "mpc.bus = [\n\t1 3 0 0 0 0 1 1 0 11 1 1.1 (0.9);\n];\n" GEN BR,
                PCF_ERR_PARSE, 5, "unexpected character '('");
    /* unterminated matrix: reported where it opens */
    s_parse_bad(HEAD BUS GEN "mpc.branch = [\n\t1\t2\t0.01\t0.1\t0\t0\t0\t0\t0\t0\t1;\n",
                PCF_ERR_PARSE, 11, "never closed");
    /* a continuation with nothing after it */
    s_parse_bad(HEAD BUS GEN BR "x = 1 + ...", PCF_ERR_PARSE, 14, "...");
    s_parse_bad(HEAD BUS GEN BR "x = 1 + ... comment", PCF_ERR_PARSE, 14, "...");
    /* unsupported statements */
    s_parse_bad(HEAD BUS GEN BR "if x > 1\n  mpc.baseMVA = 10;\nend\n", PCF_ERR_PARSE, 14, "'if'");
    s_parse_bad(HEAD BUS GEN BR "for i = 1:3\nend\n", PCF_ERR_PARSE, 14, "'for'");
    s_parse_bad(HEAD BUS GEN BR "disp(mpc)\n", PCF_ERR_PARSE, 14, "disp");
    s_parse_bad(HEAD BUS GEN BR "x = sqrt(2);\n", PCF_ERR_PARSE, 14, "sqrt");
    s_parse_bad(HEAD BUS GEN BR "[A, B] = size(mpc.bus);\n", PCF_ERR_PARSE, 14, "size");
    s_parse_bad(HEAD BUS GEN BR "mpc.bus(2, 3) = 5;\n", PCF_ERR_PARSE, 14, "':'");
    s_parse_bad(HEAD BUS GEN BR "mpc.baseMVA = y;\n", PCF_ERR_INVALID, 14, "'y' is not defined");
    s_parse_bad(HEAD BUS GEN BR "mpc.bus(:, 3) = mpc.bus(:, 3) * mpc.bus(:, 3);\n",
                PCF_ERR_PARSE, 14, "matrix product");
    s_parse_bad(HEAD BUS GEN BR "mpc.bus(:, 3) = mpc.bus(:, 4) * 2;\n", PCF_ERR_PARSE, 14,
                "block");
    s_parse_bad(HEAD BUS GEN BR "mpc.bus(:, 14) = 1;\n", PCF_ERR_INVALID, 14, "column index 14");
    s_parse_bad(HEAD BUS GEN BR "mpc.baseMVA = (-8)^0.5;\n", PCF_ERR_INVALID, 14, "complex");
    s_parse_bad(HEAD BUS GEN BR "x = 1 y\n", PCF_ERR_PARSE, 14, "after the statement");
    s_parse_bad("mpc.gen(:, 2) = 1;\n" HEAD BUS GEN BR, PCF_ERR_INVALID, 1, "before");
    s_parse_bad(HEAD BUS GEN BR "end\nx = 1;\n", PCF_ERR_PARSE, 15, "after the end");
    /* huge column count (65 values on line 5) */
    {
        char text[4096];
        int n = snprintf(text, sizeof text, "%s", HEAD "mpc.bus = [\n");
        for (int i = 0; i < 65; i++)
            n += snprintf(text + n, sizeof text - (size_t)n, " 1");
        snprintf(text + n, sizeof text - (size_t)n, ";\n];\n" GEN BR);
        s_parse_bad(text, PCF_ERR_INVALID, 5, "more than 64 columns");
    }
    /* NaN bus id on line 6 */
    s_parse_bad(HEAD "mpc.bus = [\n\t1\t3\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n"
                "\tNaN\t1\t10\t5\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n];\n" GEN BR,
                PCF_ERR_INVALID, 6, "finite");
    s_parse_bad(HEAD "mpc.bus = [\n\t1.5\t3\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n];\n"
                "mpc.gen = [];\nmpc.branch = [];\n", PCF_ERR_INVALID, 5, "integer");
    s_parse_bad(HEAD "mpc.bus = [\n\t1\t5\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n];\n"
                "mpc.gen = [];\nmpc.branch = [];\n", PCF_ERR_INVALID, 5, "type 5");
    /* Inf where MATPOWER needs a finite number (Pd), allowed in limits */
    s_parse_bad(HEAD "mpc.bus = [\n\t1\t3\tInf\t0\t0\t0\t1\t1\t0\t11\t1\t1.1\t0.9;\n];\n"
                "mpc.gen = [];\nmpc.branch = [];\n", PCF_ERR_INVALID, 5, "column 3");
    /* bus_name count mismatch: reported at the bus_name line (14) */
    s_parse_bad(HEAD BUS GEN BR "mpc.bus_name = {\n\t'one';\n};\n", PCF_ERR_INVALID, 14,
                "bus_name has 1 names for 2 buses");
    s_parse_bad(HEAD BUS GEN BR "mpc.bus_name = {\n\t'one';\n\t'two\n};\n", PCF_ERR_PARSE, 16,
                "not closed");
    s_parse_bad(HEAD BUS GEN BR "mpc.bus_name = {\n\t'one';\n\t2;\n};\n", PCF_ERR_PARSE, 16,
                "quoted string");
    s_parse_bad(HEAD BUS GEN BR "mpc.bus_name = {\n\t'one';\n\t\"t\\nwo\";\n};\n",
                PCF_ERR_PARSE, 16, "escape");
    /* shape and scalar checks */
    s_parse_bad(HEAD "mpc.bus = [\n\t1\t3\t0\t0\t0\t0\t1\t1\t0\t11\t1\t1.1;\n];\n"
                "mpc.gen = [];\nmpc.branch = [];\n", PCF_ERR_INVALID, 4, "at least 13");
    s_parse_bad("mpc.version = '2';\nmpc.baseMVA = 0;\n" BUS GEN BR, PCF_ERR_INVALID, 2,
                "baseMVA");
    s_parse_bad("mpc.version = '1';\n", PCF_ERR_INVALID, 1, "version");
    s_parse_bad("mpc.version = '2';\n" BUS GEN BR, PCF_ERR_INVALID, 11, "baseMVA");
    s_parse_bad(HEAD "mpc.bus = [];\nmpc.gen = [];\nmpc.branch = [];\n", PCF_ERR_INVALID, 4,
                "no rows");
    s_parse_bad(HEAD "mpc.bus = [1 2,, 3];\n", PCF_ERR_PARSE, 4, "','");
    s_parse_bad(HEAD "mpc.comment = 'open\n", PCF_ERR_PARSE, 4, "not closed");
    s_parse_bad(HEAD "mpc.extra = [1 2\n", PCF_ERR_PARSE, 4, "never closed");
    s_parse_bad("function mpc = x\nfunction mpc = y\n", PCF_ERR_PARSE, 2, "function");
    s_parse_bad(HEAD "mpc.baseMVA = ((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
                "(((((((((((((((((((1)))))))))))))))))))))))))))))))))))))))))))))))))))))))))"
                "))))))))))))))))))))\n", PCF_ERR_INVALID, 4, "deeply");
    /* a NUL byte in the text is just an unexpected character */
    {
        const char text[] = "mpc.baseMVA = 1\0;\n";
        pcf_error err = { 0 };
        cr_assert_null(mp_case_parse(text, sizeof text - 1, "t.m", &err));
        cr_assert_eq(err.code, PCF_ERR_PARSE);
    }
}

Test(mpcase, new_builds_zeroed_tables)
{
    mp_case *c = mp_case_new(3, 13, 2, 21, 4, 13);
    cr_assert_not_null(c);
    cr_assert_eq(c->bus.rows, 3);
    cr_assert_eq(c->gen.cols, 21);
    cr_assert_eq(c->branch.rows, 4);
    cr_assert_eq(MP_AT(&c->branch, 3, 12), 0.0);
    cr_assert_eq(c->gencost.rows, 0);
    cr_assert_null(c->bus_name);
    cr_assert_str_eq(c->version, "2");
    mp_case_destroy(&c);
    cr_assert_null(mp_case_new(1, MP_MAX_COLS + 1, 0, 0, 0, 0));
}

Test(mpcase, function_header_rules)
{
    s_parse_bad("function mpc = if\n", PCF_ERR_PARSE, 1, "keyword");
    s_parse_bad("function end\n", PCF_ERR_PARSE, 1, "keyword");
    /* the output variable need not be called mpc */
    mp_case *c = s_parse_ok("function out = other\nout.baseMVA = 100;\n"
                            "out.bus = [1 3 0 0 0 0 1 1 0 11 1 1.1 0.9];\n"
                            "out.gen = [];\nout.branch = [];\nout.bus(:, 3) = 7;\n");
    cr_assert_str_eq(c->name, "other");
    cr_assert_eq(MP_AT(&c->bus, 0, MP_PD), 7.0);
    mp_case_destroy(&c);
    /* an unnamed case is written as mpc_case */
    c = s_parse_ok("mpc.baseMVA = 100;\nmpc.bus = [1 3 0 0 0 0 1 1 0 11 1 1.1 0.9];\n"
                   "mpc.gen = [];\nmpc.branch = [];\n");
    mp_case *d = s_round_trip(c, NULL);
    cr_assert_str_eq(d->name, "mpc_case");
    s_assert_same_matrix(&c->bus, &d->bus, "bus");
    mp_case_destroy(&c);
    mp_case_destroy(&d);
}

Test(mpcase, size_limit_checked_before_reading)
{
    static const char tiny[] = "x";
    pcf_error err = { 0 };
    /* the length alone is refused: the text is never read */
    cr_assert_null(mp_case_parse(tiny, (size_t)MP_MAX_FILE_BYTES + 1, "big.m", &err));
    cr_assert_eq(err.code, PCF_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "big.m:1: "));
}

Test(mpcase, large_case_parses_fast)
{
    struct timespec a, b;
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        mp_case *c = s_load("case2869pegase");
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < best)
            best = ms;
        mp_case_destroy(&c);
    }
    cr_log_info("case2869pegase (456 KB) read in %.2f ms", best);
    /* generous: sanitizer builds on a loaded 2-core machine */
    cr_assert_lt(best, 250.0, "took %.1f ms", best);
}
