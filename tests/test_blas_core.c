/*
 * test_blas_core.c -- OpenBLAS as bin/pcf-forecaster runs it (blas_core.h):
 * on a CPU with AVX2 and FMA never the Prescott fallback unless the
 * operator asked for it; one thread (no pool spinning beside the study's
 * threads) unless the operator asked for more; the operator's
 * OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS always stand.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "blas_core.h"
#include "testdb.h"

static void s_version(const char *env, char *out, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS %s "
             "%s/pcf-forecaster version", env, testdb_bindir());
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    cr_assert_eq(pclose(p), 0, "%s: %s", cmd, out);
}

Test(blas_core, prescott_fallback_corrected_one_thread_and_the_operator_wins)
{
    char out[512];
    s_version("", out, sizeof out);
    cr_assert_not_null(strstr(out, "OpenBLAS kernels: "), "%s", out);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        cr_assert_null(strstr(out, "Prescott"), "an AVX2 CPU left on the SSE3 kernels: %s", out);
    cr_assert_not_null(strstr(out, "threads: 1)"), "%s", out);
    s_version("OPENBLAS_CORETYPE=Prescott OPENBLAS_NUM_THREADS=2", out, sizeof out);
    cr_assert_not_null(strstr(out, "OpenBLAS kernels: Prescott, threads: 2)"), "%s", out);
}

/* The decision alone, case by case: it does not depend on this machine's
 * CPU as the test above does. */
Test(blas_core, the_plan_case_by_case)
{
    static const struct {
        const char *env_threads, *env_core;
        int pool;
        const char *chosen, *could;
        int threads;
        const char *core;
    } t[] = {
        { NULL, NULL, 2, "Prescott", "SkylakeX", 1, "SkylakeX" },   /* both wrong */
        { NULL, NULL, 1, "Prescott", "Haswell", 0, "Haswell" },     /* one thread already */
        { NULL, NULL, 2, "SkylakeX", "SkylakeX", 1, NULL },         /* CPU known */
        { NULL, NULL, 2, "Zen", "Haswell", 1, NULL },               /* another choice: OpenBLAS knows */
        { NULL, NULL, 2, "Prescott", NULL, 1, NULL },               /* nothing better to run */
        { "2", NULL, 2, "Prescott", "SkylakeX", 0, "SkylakeX" },    /* the operator's threads */
        { NULL, "Prescott", 2, "Prescott", "SkylakeX", 1, NULL },   /* the operator's kernels */
        { "1", "Haswell", 1, "Haswell", "SkylakeX", 0, NULL },      /* after the re-execution */
        { NULL, NULL, 1, NULL, "SkylakeX", 0, NULL },               /* no name: leave it */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int threads = -1;
        const char *core = "unset";
        blas_core_plan(t[i].env_threads, t[i].env_core, t[i].pool, t[i].chosen, t[i].could, &threads, &core);
        cr_assert_eq(threads, t[i].threads, "case %zu: threads %d", i, threads);
        cr_assert((core == NULL && t[i].core == NULL) || (core && t[i].core && strcmp(core, t[i].core) == 0),
                  "case %zu: core %s", i, core ? core : "(none)");
    }
}
