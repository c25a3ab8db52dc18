/*
 * test_trade.h -- the case9 zone the trade-check tests share
 * (tests/test_trade.c, tests/test_trade_fault.c).
 */
#ifndef PCF_TEST_TRADE_H
#define PCF_TEST_TRADE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "publish.h"
#include "testdb.h"

/* Creates database `tag` and imports zone `zone` from a MATPOWER case and
 * a directory of DER register and ANM CSVs through bin/pcf-db. */
void trade_test_import(testdb *db, const char *tag, const char *zone, const char *matpower, const char *registry);

/* Creates database `tag` with zone T: tests/data case9 with its DER
 * register and ANM constraints, then runs the model edits sql[0..nsql),
 * then loads two weeks of SCADA (2026-05-18..31) for S1, S2, S3 flat at
 * 90 % of their export capacity, so their forecasts are well above zero. */
void trade_test_zone(testdb *db, const char *tag, const char *const *sql, size_t nsql);

/* A publisher with an engine attached (trade_samples per check) serving
 * database db on 127.0.0.1 from its own thread, until trade_srv_stop. */
typedef struct trade_srv {
    publish *p;
    atomic_int stop, reload;
    pthread_t th;
    char conninfo[512];
    pcf_rc rc;                  /* publish_serve's, after trade_srv_stop */
} trade_srv;

void trade_srv_start(trade_srv *s, const testdb *db, size_t trade_samples);
void trade_srv_stop(trade_srv *s);

#endif
