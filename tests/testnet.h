/*
 * testnet.h -- tiny MATPOWER networks built in code for the study tests
 * (tests/test_study.c, tests/test_results_detail.c), so a closed-form
 * answer can be worked out by hand from the picture in the test.
 */
#ifndef PCF_TESTNET_H
#define PCF_TESTNET_H

#include <stddef.h>

#include "mpcase.h"

/* Buses 1..nbus at 33 kV (bus 1 the reference, with a generator) and the
 * branches br[l] = {from, to}, x = 0.1 p.u., no rating.  Asserts on
 * allocation failure; the caller destroys it. */
mp_case *testnet_lines(size_t nbus, size_t nbr, const int (*br)[2]);

#endif
