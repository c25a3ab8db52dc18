/*
 * testhttp.h -- scraping a /metrics endpoint in tests: a real HTTP GET with
 * libcurl, a sample's value out of the exposition text, and a free port
 * for a daemon under test.
 */
#ifndef PCF_TESTHTTP_H
#define PCF_TESTHTTP_H

#include <stddef.h>

/* GETs url; returns the HTTP status (0 when the transfer failed), the body
 * in *body (caller frees; "" on failure) and the Content-Type in ctype. */
long testhttp_get(const char *url, char **body, char *ctype, size_t ctlen);

/* GET http://127.0.0.1:port/metrics, retried for up to `seconds` while the
 * daemon starts; NULL when it never answered 200. */
char *testhttp_scrape(int port, int seconds);

/* The value of the sample whose name and labels are exactly `series`
 * (e.g. "pcf_x_total{k=\"v\"}"), or NAN when absent. */
double testhttp_sample(const char *text, const char *series);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int testhttp_free_port(void);

#endif
