/*
 * publish_serve.c -- the publisher's main loop: PostgreSQL LISTEN/NOTIFY in,
 * feeds and replies out (publish.h, publish_serve()).
 *
 * The engine writes a run in one transaction that also runs
 * `NOTIFY pcf_run, '<run_id>'`; PostgreSQL delivers the notification only
 * when that transaction commits, so publishing on notification is "right
 * after commit, never before".
 *
 * States:
 *
 *   DISCONNECTED --connect ok, LISTEN, catch up--> CONNECTED
 *        ^  |                                          |
 *        |  +--connect fails: wait backoff, double it  | socket error, or a
 *        |     (min..max)                              | query finds the
 *        +---------------------------------------------+ connection dead
 *
 * Catch-up: on the first connection the latest day-ahead and real-time run
 * of every zone are published (this rebuilds the snapshot state of a
 * restarted publisher); on every later connection, the runs committed while
 * we were away, in id order.  Those are not simply the ids above the
 * highest seen: the engine takes a run's id when its transaction opens,
 * before the study (engine.c streams rows as SPs finish), so a long
 * day-ahead run commits after real-time runs with higher ids.  Every run
 * above the highest id seen is taken, and every run that finished within
 * CATCHUP_WINDOW of the last one seen; runs already handled here (the
 * ring of recent ids) are not loaded again, and publish_send_run() skips
 * runs a topic already has, so a run seen both ways goes out once.
 * Requests keep being answered while disconnected (snapshots from memory;
 * database requests get INTERNAL).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "parse.h"
#include "publish.h"

/* Events as log.h lines, a fixed phrase with the details as fields, as
 * publish.c writes its own; silent when the publisher has no log callback. */
#define S_LOG(p, level, ...) do { if (publish_logs(p)) pcf_log((level), __VA_ARGS__, NULL); } while (0)
#define S_LOG_ERR(p, level, msg, e, ...) \
    do { if (publish_logs(p)) pcf_log_error((level), (msg), (e), __VA_ARGS__, NULL); } while (0)

#define CATCHUP_MAX 1000   /* runs published in one catch-up; older ones are superseded anyway */
/* How much earlier than the last run seen a run the catch-up still looks
 * at may have finished.  A run's finished_at is read just before its
 * commit (engine.c), so runs that committed out of id order finished
 * within milliseconds of each other; minutes leave room for a slow commit. */
#define CATCHUP_WINDOW "5 minutes"
#define SEEN_RING 256      /* recent run ids handled, not loaded again by a catch-up */

typedef struct s_serve {
    publish *p;
    const publish_serve_opts *o;
    PGconn *db;
    int64_t last_seen;        /* highest run id notified or caught up */
    int64_t seen[SEEN_RING];  /* run ids handled (published or skipped), a ring */
    size_t nseen;
    int connected_once;
    int backoff_ms;
    int64_t next_attempt_ms;
    publish_log_fn log;
    void *log_ctx;
} s_serve;

static void s_disconnect(s_serve *s, const char *why)
{
    if (!s->db) return;
    S_LOG(s->p, PCF_LOG_WARN, "database connection lost", "reason", why);
    PQfinish(s->db);
    s->db = NULL;
    s->next_attempt_ms = 0;   /* first retry right away, then back off */
}

static int s_dead(s_serve *s)
{
    return !s->db || PQstatus(s->db) != CONNECTION_OK;
}

static void s_seen_add(s_serve *s, int64_t id)
{
    s->seen[s->nseen++ % SEEN_RING] = id;
}

static int s_seen(const s_serve *s, int64_t id)
{
    size_t n = s->nseen < SEEN_RING ? s->nseen : SEEN_RING;
    for (size_t i = 0; i < n; i++)
        if (s->seen[i] == id) return 1;
    return 0;
}

/* Publishes the runs a query returns (column 0: run_id), in order, but
 * for those already handled. */
static pcf_rc s_publish_query(s_serve *s, const char *sql, const char *param, pcf_error *err)
{
    const char *params[1] = {param};
    PGresult *res = db_query(s->db, sql, param ? 1 : 0, params, err);
    if (!res) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    for (int i = 0; i < PQntuples(res) && rc == PCF_OK; i++) {
        const char *v = PQgetvalue(res, i, 0);
        long id = 0;
        if (parse_long(v, strlen(v), &id) != PCF_OK || s_seen(s, id)) continue;
        pcf_error e;
        pcf_rc r = publish_run_id(s->p, s->db, id, &e);
        if (r == PCF_ERR_DB && s_dead(s)) rc = pcf_error_set(err, r, "%s", e.msg);
        else if (r != PCF_OK) S_LOG_ERR(s->p, PCF_LOG_ERROR, "run not published", &e, "run", PCF_LOG_I(id));
        if (rc == PCF_OK) s_seen_add(s, id);
        if (id > s->last_seen) s->last_seen = id;
    }
    PQclear(res);
    return rc;
}

static pcf_rc s_catch_up(s_serve *s, pcf_error *err)
{
    if (!s->connected_once) {
        pcf_rc rc = s_publish_query(s,
                                    "SELECT run_id FROM (SELECT DISTINCT ON (zone_id, kind) run_id FROM run"
                                    " WHERE kind IN ('day_ahead', 'real_time') ORDER BY zone_id, kind, run_id DESC) l"
                                    " ORDER BY run_id",
                                    NULL, err);
        if (rc != PCF_OK) return rc;
        PGresult *res = db_query(s->db, "SELECT coalesce(max(run_id), 0) FROM run", 0, NULL, err);
        if (!res) return PCF_ERR_DB;
        long m = 0;
        const char *v = PQgetvalue(res, 0, 0);
        if (parse_long(v, strlen(v), &m) == PCF_OK && m > s->last_seen) s->last_seen = m;
        PQclear(res);
        s->connected_once = 1;
        return PCF_OK;
    }
    char last[24];
    snprintf(last, sizeof last, "%lld", (long long)s->last_seen);
    return s_publish_query(s,
                           "SELECT run_id FROM (SELECT run_id FROM run WHERE kind IN ('day_ahead', 'real_time')"
                           " AND (run_id > $1::bigint OR finished_at >= (SELECT max(finished_at) FROM run"
                           " WHERE run_id <= $1::bigint) - interval '" CATCHUP_WINDOW "')"
                           " ORDER BY run_id DESC LIMIT 1000) l ORDER BY run_id",
                           last, err);
}

/* Server notices (e.g. "terminating connection") go to the log, not stderr. */
static void s_notice(void *arg, const char *msg)
{
    const publish *p = arg;
    char line[512];
    size_t n = strlen(msg);
    snprintf(line, sizeof line, "%.*s", (int)(n && msg[n - 1] == '\n' ? n - 1 : n), msg);
    S_LOG(p, PCF_LOG_WARN, "database notice", "notice", line);
}

static void s_try_connect(s_serve *s)
{
    int64_t now = publish_now_ms();
    if (now < s->next_attempt_ms) return;
    pcf_error e;
    s->db = db_connect(s->o->conninfo ? s->o->conninfo : "", &e);
    if (s->db) PQsetNoticeProcessor(s->db, s_notice, s->p);
    if (s->db && db_exec(s->db, "LISTEN pcf_run", &e) == PCF_OK && s_catch_up(s, &e) == PCF_OK) {
        s->backoff_ms = s->o->backoff_min_ms > 0 ? s->o->backoff_min_ms : 250;
        S_LOG(s->p, PCF_LOG_INFO, "database connected", "listen", "pcf_run", "runs_seen_up_to", PCF_LOG_I(s->last_seen));
        return;
    }
    if (s->db) PQfinish(s->db);
    s->db = NULL;
    S_LOG_ERR(s->p, PCF_LOG_WARN, "database unavailable; retrying", &e, "retry_ms", PCF_LOG_I(s->backoff_ms));
    s->next_attempt_ms = now + s->backoff_ms;
    int max = s->o->backoff_max_ms > 0 ? s->o->backoff_max_ms : 30000;
    s->backoff_ms = s->backoff_ms * 2 > max ? max : s->backoff_ms * 2;
}

static void s_notifications(s_serve *s)
{
    if (!PQconsumeInput(s->db)) {
        s_disconnect(s, PQerrorMessage(s->db));
        return;
    }
    PGnotify *n;
    while (s->db && (n = PQnotifies(s->db)) != NULL) {
        long id = 0;
        if (strcmp(n->relname, "pcf_run") == 0 && parse_long(n->extra, strlen(n->extra), &id) == PCF_OK && id > 0) {
            pcf_error e;
            pcf_rc rc = publish_run_id(s->p, s->db, id, &e);
            if (rc == PCF_ERR_DB && s_dead(s)) {
                s_disconnect(s, e.msg);   /* the run is caught up after reconnecting */
            } else {
                if (rc != PCF_OK) S_LOG_ERR(s->p, PCF_LOG_ERROR, "run not published", &e, "run", PCF_LOG_I(id));
                s_seen_add(s, id);
                if (id > s->last_seen) s->last_seen = id;
            }
        }
        PQfreemem(n);
    }
}

pcf_rc publish_serve(publish *p, const publish_serve_opts *o, pcf_error *err)
{
    s_serve s;
    memset(&s, 0, sizeof s);
    s.p = p;
    s.o = o;
    s.backoff_ms = o->backoff_min_ms > 0 ? o->backoff_min_ms : 250;
    pcf_rc rc = PCF_OK;
    while (!atomic_load(o->stop)) {
        if (o->reload && atomic_exchange(o->reload, 0)) {
            pcf_error e;
            if (publish_reload_allowlist(p, &e) != PCF_OK)
                S_LOG_ERR(p, PCF_LOG_ERROR, "allowlist not reloaded, the previous one stays", &e, NULL);
        }
        if (s_dead(&s)) {
            if (s.db) s_disconnect(&s, PQerrorMessage(s.db));
            s_try_connect(&s);
        }
        bool ready = false;
        rc = publish_poll(p, s.db, s.db ? PQsocket(s.db) : -1, s.db ? 200 : 50, &ready, err);
        if (rc != PCF_OK) break;
        if (ready && s.db) s_notifications(&s);
    }
    if (s.db) PQfinish(s.db);
    return rc;
}
