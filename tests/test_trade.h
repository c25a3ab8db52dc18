/*
 * test_trade.h -- the case9 zone the trade-check tests share
 * (tests/test_trade.c, tests/test_trade_fault.c).
 */
#ifndef PCF_TEST_TRADE_H
#define PCF_TEST_TRADE_H

#include <stddef.h>

#include "testdb.h"

/* Creates database `tag` with zone T: tests/data case9 with its DER
 * register and ANM constraints, then runs the model edits sql[0..nsql),
 * then loads two weeks of SCADA (2026-05-18..31) for S1, S2, S3 flat at
 * 90 % of their export capacity, so their forecasts are well above zero. */
void trade_test_zone(testdb *db, const char *tag, const char *const *sql, size_t nsql);

#endif
