/*
 * testnet.h -- tiny MATPOWER networks built in code for the study tests
 * (tests/test_study.c, tests/test_results_detail.c), so a closed-form
 * answer can be worked out by hand from the picture in the test.
 */
#ifndef PCF_TESTNET_H
#define PCF_TESTNET_H

#include <stddef.h>

#include "mpcase.h"
#include "study.h"

/* Buses 1..nbus at 33 kV (bus 1 the reference, with a generator) and the
 * branches br[l] = {from, to}, x = 0.1 p.u., no rating.  Asserts on
 * allocation failure; the caller destroys it. */
mp_case *testnet_lines(size_t nbus, size_t nbr, const int (*br)[2]);

/* Two parallel lines 1-2 (case rows 0 and 1, both credible faults) with one
 * site of 100 MW export at bus 2; the one constraint is row 0, export
 * (2 -> 1) counted positive.  The study_def points into the struct: keep it
 * in place while in use; testnet_parallel_destroy frees the case. */
typedef struct testnet_parallel {
    mp_case *c;
    int row, fault_rows[2];
    double sign;
    study_constraint k;
    study_site site;
    anm_tranche_def tr;
    study_def d;
} testnet_parallel;

void testnet_parallel_init(testnet_parallel *p, size_t samples, uint64_t seed);
void testnet_parallel_destroy(testnet_parallel *p);

#endif
