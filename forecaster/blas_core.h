/*
 * blas_core.h -- have OpenBLAS use the kernels the CPU can run, and no
 * threads of its own.
 *
 * Kernels: OpenBLAS chooses them when it loads, from the CPU's family and
 * model.  Debian 12's OpenBLAS 0.3.21 does not know CPUs newer than it
 * (Intel model 207, Emerald Rapids, where this was found) and falls back to
 * its "Prescott" SSE3 kernels, which run the study's flow products at about
 * a third of the speed of the AVX-512 ones on the same CPU.
 *
 * Threads: the study runs its own threads and calls BLAS single-threaded
 * (openblas_set_num_threads(1)), but OpenBLAS has by then started a pool of
 * threads that spin on sched_yield for a while before they sleep: on 2
 * cores that took 5-8 % of a real-time run's CPU from the study's threads.
 *
 * Both are settings OpenBLAS reads only as it loads (OPENBLAS_CORETYPE,
 * OPENBLAS_NUM_THREADS): blas_core_ensure sets them and executes the
 * program again, once.
 */
#ifndef PCF_BLAS_CORE_H
#define PCF_BLAS_CORE_H

/* When OpenBLAS runs more than one thread and OPENBLAS_NUM_THREADS is not
 * set, sets it to 1; when it fell back to Prescott on a CPU with AVX-512
 * (SkylakeX kernels) or AVX2 and FMA (Haswell) and OPENBLAS_CORETYPE is not
 * set, sets that; if either was set, re-executes /proc/self/exe with argv.
 * Returns only if nothing needed doing or the exec failed (the program then
 * runs as it would have).  An OPENBLAS_NUM_THREADS or OPENBLAS_CORETYPE
 * the operator set stands (OMP_NUM_THREADS and GOTO_NUM_THREADS do not: they
 * rank below OPENBLAS_NUM_THREADS in OpenBLAS, and the study wants one BLAS
 * thread whatever OpenMP programs are told).  A program run under valgrind
 * needs --trace-children=yes to follow the re-execution.  Call
 * first thing in main, before threads or descriptors that should not leak. */
void blas_core_ensure(char **argv);

/* The decision blas_core_ensure takes, apart from the process: from the
 * OPENBLAS_NUM_THREADS and OPENBLAS_CORETYPE the environment holds (NULL:
 * unset), the threads OpenBLAS started, the kernels it chose and those the
 * CPU could run (NULL: none better), whether to set OPENBLAS_NUM_THREADS=1
 * (*threads) and the OPENBLAS_CORETYPE to set (*core, NULL: none). */
void blas_core_plan(const char *env_threads, const char *env_core, int pool, const char *chosen,
                    const char *could, int *threads, const char **core);

/* The kernel set OpenBLAS is using, e.g. "SkylakeX", and the threads it
 * started as it loaded (as blas_core_ensure found them; the program may
 * use fewer since): for `pcf-forecaster version` and BENCH. */
const char *blas_core_name(void);
int blas_core_threads(void);

#endif
