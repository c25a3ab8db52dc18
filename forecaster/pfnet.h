/*
 * pfnet.h -- the indexed network model every power-flow solver works on.
 *
 * A MATPOWER case (common/mpcase.h) keeps buses as labelled rows; the solvers
 * need dense 0-based indices.  pf_net_new() does MATPOWER's ext2int and
 * bustypes steps once per topology:
 *   - isolated buses (type 4) are dropped, with every branch and generator
 *     attached to them;
 *   - out-of-service branches (status 0) and generators (status <= 0) are
 *     dropped;
 *   - a PV bus without an in-service generator becomes PQ, a reference bus
 *     without one hands the role to the first PV bus (as MATPOWER's
 *     bustypes); exactly one reference bus must remain;
 *   - taps of 0 become 1, phase shifts are converted to radians;
 *   - connected components (islands) of the in-service graph are labelled.
 * Bus labels need not be consecutive or sorted: row_bus / bus_row translate
 * between case rows and internal indices, row_br / br_row do the same for
 * branches (the CLI prints every case row, out-of-service ones as zeros).
 *
 * The object is immutable after construction, so any number of threads may
 * share it.  All per-unit quantities use base_mva.
 */
#ifndef PCF_PFNET_H
#define PCF_PFNET_H

#include <stddef.h>

#include "error.h"
#include "mpcase.h"

/* Hostile-input bounds: the largest network we agree to index. */
#define PF_MAX_BUSES    200000
#define PF_MAX_BRANCHES 400000

typedef struct pf_net {
    double base_mva;
    size_t nbus_case, nbr_case, ngen_case;  /* rows in the case tables */

    /* buses (active = type 1..3), internal index 0..nb-1 in case row order */
    size_t nb;
    int *bus_row;           /* [nb] internal -> case row */
    int *row_bus;           /* [nbus_case] case row -> internal, -1 if dropped */
    double *bus_label;      /* [nb] BUS_I */
    int *type;              /* [nb] effective MP_PQ / MP_PV / MP_REF */
    int ref;                /* internal index of the reference bus */
    size_t npv, npq;
    int *pv, *pq;           /* [npv], [npq] internal indices, ascending */
    double *pd, *qd;        /* [nb] load, p.u. */
    double *gs, *bs;        /* [nb] shunt at V = 1 p.u., p.u. */
    double *vm0, *va0;      /* [nb] voltages stored in the case (va radians) */

    /* in-service generators on active buses */
    size_t ng;
    int *gen_row;           /* [ng] case row */
    int *gen_bus;           /* [ng] internal bus index */
    double *pg, *qg;        /* [ng] p.u. */
    double *vg;             /* [ng] voltage set point, p.u. */
    double *qmax, *qmin;    /* [ng] p.u. */

    /* in-service branches between active buses */
    size_t nl;
    int *br_row;            /* [nl] case row */
    int *row_br;            /* [nbr_case] case row -> internal, -1 if out */
    int *f, *t;             /* [nl] internal bus indices */
    double *r, *x, *b;      /* [nl] p.u. */
    double *tap;            /* [nl] off-nominal ratio, 1 for lines */
    double *shift;          /* [nl] phase shift, radians */

    /* islands of the in-service graph */
    size_t nisland;
    int *island;            /* [nb] component id 0..nisland-1 */
} pf_net;

/* Builds the indexed model.  Fails with PCF_ERR_INVALID (message naming the
 * case row) on duplicate bus labels, unknown branch or generator buses,
 * non-finite values, bad bus types, an in-service branch with r = x = 0, no
 * or several reference buses; PCF_ERR_LIMIT beyond PF_MAX_*.  An islanded
 * network is built (nisland > 1): solvers refuse it, see pf_net_connected. */
pcf_rc pf_net_new(const mp_case *c, pf_net **out, pcf_error *err);

/* Frees the model and NULLs *net; safe on NULL. */
void pf_net_destroy(pf_net **net);

/* PCF_OK if the network is one island, else PCF_ERR_ISLAND with a message
 * naming a bus that is cut off from the reference bus. */
pcf_rc pf_net_connected(const pf_net *net, pcf_error *err);

/* Net scheduled injections of the case in p.u.: p[i] = sum Pg - Pd and
 * q[i] = sum Qg - Qd over in-service generators at bus i (either may be
 * NULL).  Shunts are not included: the solvers model them. */
void pf_net_injections(const pf_net *net, double *p, double *q);

/* Internal index of the bus labelled `label`, or -1 (binary search). */
int pf_net_bus_index(const pf_net *net, double label);

#endif
