/*
 * blas_core.c -- have OpenBLAS use the kernels the CPU can run; see
 * blas_core.h for why.
 *
 * The re-execution happens at most once: the child sees OPENBLAS_CORETYPE
 * set and goes on.  Only the Prescott fallback is corrected: any other
 * choice is OpenBLAS recognising the CPU, which it knows better than we do.
 */
#include "blas_core.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_wanted(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void blas_core_ensure(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || !argv || !argv[0]) return;
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0) return;
    const char *want = s_wanted();
    if (!want || setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");      /* no exec: say nothing untrue to children */
}

const char *blas_core_name(void)
{
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}
