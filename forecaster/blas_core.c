/*
 * blas_core.c -- have OpenBLAS use the kernels the CPU can run and no
 * threads of its own; see blas_core.h for why.
 *
 * The re-execution happens at most once: the child finds the variables set
 * and goes on.  Only the Prescott fallback is corrected: any other kernel
 * choice is OpenBLAS recognising the CPU, which it knows better than we do.
 */
#include "blas_core.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int s_pool = -1;     /* OpenBLAS's threads as it loaded */

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

void blas_core_plan(const char *env_threads, const char *env_core, int pool, const char *chosen,
                    const char *could, int *threads, const char **core)
{
    *threads = !env_threads && pool > 1;
    *core = !env_core && chosen && strcmp(chosen, "Prescott") == 0 && could ? could : NULL;
}

void blas_core_ensure(char **argv)
{
    s_pool = openblas_get_num_threads();
    if (!argv || !argv[0]) return;
    int want_threads;
    const char *want_core;
    blas_core_plan(getenv("OPENBLAS_NUM_THREADS"), getenv("OPENBLAS_CORETYPE"), s_pool, openblas_get_corename(),
                   s_wanted(), &want_threads, &want_core);
    int threads = want_threads && setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0;
    int core = want_core && setenv("OPENBLAS_CORETYPE", want_core, 1) == 0;
    if (!threads && !core) return;
    execv("/proc/self/exe", argv);
    /* no exec: say nothing untrue to children */
    if (threads) unsetenv("OPENBLAS_NUM_THREADS");
    if (core) unsetenv("OPENBLAS_CORETYPE");
}

const char *blas_core_name(void)
{
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

int blas_core_threads(void)
{
    return s_pool >= 0 ? s_pool : openblas_get_num_threads();
}
