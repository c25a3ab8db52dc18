/*
 * blas_core.h -- have OpenBLAS use the kernels the CPU can run.
 *
 * OpenBLAS chooses its kernels when it loads, from the CPU's family and
 * model.  Debian 12's OpenBLAS 0.3.21 does not know CPUs newer than it
 * (Intel model 207, Emerald Rapids, where this was found) and falls back to
 * its "Prescott" SSE3 kernels, which run the study's flow products at about
 * a third of the speed of the AVX-512 ones on the same CPU.  The
 * OPENBLAS_CORETYPE variable overrides the choice, but is read only as the
 * library loads: blas_core_ensure sets it and executes the program again.
 */
#ifndef PCF_BLAS_CORE_H
#define PCF_BLAS_CORE_H

/* When OpenBLAS fell back to Prescott on a CPU with AVX-512 (SkylakeX
 * kernels) or AVX2 and FMA (Haswell), and OPENBLAS_CORETYPE is not set:
 * sets it and re-executes /proc/self/exe with argv; returns only if nothing
 * needed doing or the exec failed (the program then runs as it would
 * have).  An operator's own OPENBLAS_CORETYPE always stands.  Call first
 * thing in main, before threads or open descriptors that should not leak. */
void blas_core_ensure(char **argv);

/* The kernel set OpenBLAS is using, e.g. "SkylakeX" (for logs and BENCH). */
const char *blas_core_name(void);

#endif
