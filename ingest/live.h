/*
 * live.h -- the live SCADA feed: a ZeroMQ PULL socket the gateways PUSH
 * pcf.v1.ScadaBatch messages to (docs/protocol.md section 9).
 *
 * Framing: two frames, [type "pcf.v1.ScadaBatch"][ScadaBatch bytes].  A
 * message with other framing or an undecodable body is logged and dropped
 * (it has no identity to quarantine under).  Batches already queued are
 * loaded in groups (at most 64, collected for at most 100 ms), one
 * transaction per group, each batch under its own savepoint
 * (load_scada_batch); a batch whose (gateway_id,
 * batch_sequence) is already committed is skipped, and a jump in a gateway's
 * sequence is logged as a gap.  A batch the database refuses with a data or
 * integrity error (SQLSTATE class 22 or 23) is quarantined whole and counted
 * as refused; one refused with any other error stays pending and is tried
 * again at the next poll (live.c explains).
 *
 * No loss on database failure: a received batch is kept until its
 * group's transaction commits, and counted and logged only then.  When
 * PostgreSQL fails, live_poll returns PCF_ERR_DB with the whole group still
 * pending; the next live_poll (after the caller reconnected) loads it first.  A kill -9 between receipt and commit loses
 * the batches ZeroMQ had delivered but not yet committed (PUSH/PULL has no
 * acknowledgement); a gateway may resend any batch safely, since the
 * (gateway_id, batch_sequence) check makes a repeat a no-op.
 */
#ifndef PCF_LIVE_H
#define PCF_LIVE_H

#include <libpq-fe.h>

#include "error.h"
#include "worker.h"

typedef struct live_feed live_feed;

/* Binds a PULL socket at endpoint ("tcp://127.0.0.1:5558", "ipc://...").
 * NULL with err set on failure. */
live_feed *live_new(const char *endpoint, pcf_error *err);

/* As live_new, with CurveZMQ (docs/protocol.md section 11): the socket is a
 * Curve server with the secret key of secret_key_path (a pcf-keygen key
 * file), and a ZAP handler admits only gateways whose public key is in
 * allowlist_path (one Z85 key per line).  Refused handshakes are logged
 * by live_poll. */
live_feed *live_new_curve(const char *endpoint, const char *secret_key_path, const char *allowlist_path,
                          pcf_error *err);

/* Names the configured source the feed's batches belong to: from then on
 * each batch, once settled (committed, quarantined or dropped), is reported
 * to the worker's event hook (worker_report: outcome, rows and load time,
 * the batch's own load plus its group's COMMIT), as the file sources'
 * inputs are.  src must outlive the feed. */
void live_set_source(live_feed *f, const ingest_source *src);

/* Closes the socket and frees; *fp becomes NULL.  Pending batches are lost. */
void live_destroy(live_feed **fp);

/* Waits up to timeout_ms for a first message, then loads it and every
 * message already queued (up to about 1000), a group per transaction.
 * res counts batches (loaded / already / refused) and rows. */
pcf_rc live_poll(live_feed *f, PGconn *c, int timeout_ms, worker_log_fn log, void *log_ctx,
                 worker_result *res, pcf_error *err);

#endif
