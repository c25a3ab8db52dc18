/*
 * testnet.c -- see testnet.h.
 */
#include "testnet.h"

#include <criterion/criterion.h>

/* A case with buses 1..nbus (bus 1 the reference with a generator), and the
 * given branches (from, to) with x = 0.1 and no rating. */
mp_case *testnet_lines(size_t nbus, size_t nbr, const int (*br)[2])
{
    mp_case *c = mp_case_new(nbus, 13, 1, 10, nbr, 13);
    cr_assert(c);
    c->base_mva = 100;
    for (size_t i = 0; i < nbus; i++) {
        MP_AT(&c->bus, i, MP_BUS_I) = (double)(i + 1);
        MP_AT(&c->bus, i, MP_BUS_TYPE) = i == 0 ? MP_REF : MP_PQ;
        MP_AT(&c->bus, i, MP_VM) = 1;
        MP_AT(&c->bus, i, MP_BASE_KV) = 33;
        MP_AT(&c->bus, i, MP_VMAX) = 1.1;
        MP_AT(&c->bus, i, MP_VMIN) = 0.9;
        MP_AT(&c->bus, i, MP_BUS_AREA) = 1;
        MP_AT(&c->bus, i, MP_ZONE) = 1;
    }
    MP_AT(&c->gen, 0, MP_GEN_BUS) = 1;
    MP_AT(&c->gen, 0, MP_VG) = 1;
    MP_AT(&c->gen, 0, MP_MBASE) = 100;
    MP_AT(&c->gen, 0, MP_GEN_STATUS) = 1;
    MP_AT(&c->gen, 0, MP_PMAX) = 1000;
    for (size_t l = 0; l < nbr; l++) {
        MP_AT(&c->branch, l, MP_F_BUS) = br[l][0];
        MP_AT(&c->branch, l, MP_T_BUS) = br[l][1];
        MP_AT(&c->branch, l, MP_BR_X) = 0.1;
        MP_AT(&c->branch, l, MP_BR_STATUS) = 1;
        MP_AT(&c->branch, l, MP_ANGMIN) = -360;
        MP_AT(&c->branch, l, MP_ANGMAX) = 360;
    }
    return c;
}

void testnet_parallel_init(testnet_parallel *p, size_t samples, uint64_t seed)
{
    static const int br[2][2] = { { 1, 2 }, { 1, 2 } };
    p->c = testnet_lines(2, 2, br);
    p->row = 0;
    p->fault_rows[0] = 0;
    p->fault_rows[1] = 1;
    p->sign = -1;
    p->k = (study_constraint){ 1, &p->row, &p->sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    p->site = (study_site){ 2, 100 };
    p->tr = (anm_tranche_def){ 0, 100, 0, 1, ANM_DANM };
    p->d = (study_def){ p->c, 1, 1, 1, 2, &p->k, &p->site, &p->tr, NULL, p->fault_rows, samples, seed, 2, NULL };
}

void testnet_parallel_destroy(testnet_parallel *p)
{
    mp_case_destroy(&p->c);
}
