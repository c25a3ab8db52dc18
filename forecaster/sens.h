/*
 * sens.h -- DC sensitivity factors: PTDF, LODF and bridge detection.
 *
 * PTDF (nl x nb, row-major): flow change on branch l (MW) per MW injected at
 * bus i and withdrawn at the slack (the reference bus, or distributed over
 * weights w: PTDF_w = PTDF - (PTDF w) 1').  Built from the factorised B of
 * a pf_dc: one KLU solve per branch with right-hand side b_l (e_f - e_t),
 * since B is symmetric so row l of Bf B^-1 is B^-1 applied to that vector.
 *
 * LODF (nl x nl, row-major): LODF(k,l) = change of flow on k per MW that was
 * flowing on l, when l is taken out: H(k,l) / (1 - H(l,l)) with
 * H = PTDF * Cft' (independent of the slack choice), LODF(l,l) = -1.  A
 * branch whose outage splits the network (a bridge) gets a NaN column:
 * there is no post-fault DC solution for the connected network.
 *
 * Bridges are found with Tarjan's low-link algorithm on the multigraph,
 * skipping only the very edge used to enter a vertex, so a pair of parallel
 * branches are never bridges (MATPOWER's find_islands-based check gets this
 * wrong on case118).  Iterative, so radial feeders of any depth are safe.
 *
 * All functions are re-entrant; the pf_dc passed to pf_ptdf is used for its
 * KLU factors (one pf_dc per thread).
 */
#ifndef PCF_SENS_H
#define PCF_SENS_H

#include <stddef.h>

#include "dcpf.h"
#include "error.h"
#include "pfnet.h"

/* ptdf: [nl * nb] caller-allocated.  w: slack weights [nb] or NULL. */
pcf_rc pf_ptdf(pf_dc *dc, const pf_net *net, const double *w, double *ptdf,
               pcf_error *err);

/* Only the PTDF rows of the given in-service branches (for monitored
 * branches): ptdf [nrows * nb], row r for branch rows[r]. */
pcf_rc pf_ptdf_rows(pf_dc *dc, const pf_net *net, const double *w, const int *rows,
                    size_t nrows, double *ptdf, pcf_error *err);

/* is_bridge: [nl], set to 1 for branches whose outage islands the network. */
pcf_rc pf_bridges(const pf_net *net, unsigned char *is_bridge, pcf_error *err);

/* lodf: [nl * nl] caller-allocated, from a PTDF (any slack) and the bridge
 * flags (NULL: computed here). */
pcf_rc pf_lodf(const pf_net *net, const double *ptdf, const unsigned char *is_bridge,
               double *lodf, pcf_error *err);

#endif
