/* fuzz_mpcase.c -- libFuzzer target for the MATPOWER case reader/writer.
 *
 * Any input must end in a case or a clean error (never a crash, leak or
 * hang).  When it parses, the case is written to memory with mp_case_write
 * and parsed again, and the two must hold the same numbers bit for bit
 * (NaNs compare equal whatever their payload, as the writer spells them all
 * "NaN"); any difference aborts, so libFuzzer keeps the input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpcase.h"

static int s_same(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void s_check_matrix(const mp_matrix *a, const mp_matrix *b)
{
    if (a->rows != b->rows || a->cols != b->cols)
        abort();
    for (size_t i = 0; i < a->rows * a->cols; i++)
        if (!s_same(a->v[i], b->v[i]))
            abort();
}

static void s_check(const mp_case *a, const mp_case *b)
{
    /* An unnamed case is written as "mpc_case" (a function needs a name). */
    if (a->name[0] && strcmp(a->name, b->name) != 0)
        abort();
    if (strcmp(a->version, b->version) != 0 || !s_same(a->base_mva, b->base_mva))
        abort();
    s_check_matrix(&a->bus, &b->bus);
    s_check_matrix(&a->gen, &b->gen);
    s_check_matrix(&a->branch, &b->branch);
    s_check_matrix(&a->gencost, &b->gencost);
    if (a->bus_name_count != b->bus_name_count)
        abort();
    for (size_t i = 0; i < a->bus_name_count; i++)
        if (strcmp(a->bus_name[i], b->bus_name[i]) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pcf_error err;
    mp_case *c = mp_case_parse((const char *)data, size, "fuzz", &err);
    if (!c)
        return 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    if (mp_case_write(c, f, &err) != PCF_OK)
        abort();
    fclose(f);
    mp_case *d = mp_case_parse(buf, len, "fuzz-rewritten", &err);
    if (!d) {
        fprintf(stderr, "re-read failed: %s\n", err.msg);
        abort();
    }
    s_check(c, d);
    free(buf);
    mp_case_destroy(&c);
    mp_case_destroy(&d);
    return 0;
}
