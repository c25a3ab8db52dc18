/*
 * ingest_config.h -- the ingest worker's INI configuration (libinih).
 *
 *     [database]
 *     conninfo = host=/run/postgresql dbname=pcf   ; empty: PG* environment
 *
 *     [source historian]            ; one section per source: "source NAME"
 *     kind = scada                  ; scada | outage_json | outage_ukpn_csv | openmeteo | scada_zmq
 *     directory = /var/spool/pcf/historian   ; file kinds: the watched inbox
 *     poll_seconds = 10
 *
 *     [source wx-london]
 *     kind = openmeteo
 *     url = https://api.open-meteo.com/v1/forecast?latitude=51.5&longitude=-0.12
 *       &hourly=temperature_2m,wind_speed_100m   ; indented lines continue the url
 *     locations = london            ; weather_location ids, in the URL's coordinate order
 *     model = ukmo_seamless         ; for keys without a model suffix
 *     poll_seconds = 3600
 *     timeout_seconds = 30          ; whole transfer
 *     retries = 3                   ; after the first attempt
 *     backoff_ms = 1000             ; first retry delay, doubled each time
 *
 *     [source gateways]
 *     kind = scada_zmq              ; live ScadaBatch messages (docs/protocol.md section 9)
 *     endpoint = tcp://127.0.0.1:5558
 *     poll_seconds = 10             ; `once`: how long to listen
 *     curve_secret_key = /etc/pcf/ingest.key   ; optional, with curve_allowlist:
 *     curve_allowlist = /etc/pcf/gateways.allow ; CurveZMQ, only listed gateways
 *
 *     [metrics]                     ; Prometheus endpoint (docs/operations.md)
 *     port = 9464                   ; 0 disables; pcf-ingest --metrics-port overrides
 *     address = 127.0.0.1           ; --metrics-address overrides
 *
 * libinih reads lines of at most 200 bytes, so a long url is split over
 * indented continuation lines; the pieces are joined without separators.
 * Source names: 1..64 of [A-Za-z0-9_.-].  Numbers are checked (parse.h) and
 * bounded; unknown keys and sections are errors, so a typo never silently
 * becomes a default.  At most INGEST_MAX_SOURCES sources.
 */
#ifndef PCF_INGEST_CONFIG_H
#define PCF_INGEST_CONFIG_H

#include <stddef.h>

#include "error.h"

#define INGEST_MAX_SOURCES 64
#define INGEST_MAX_LOCATIONS 32
#define INGEST_METRICS_PORT 9464

typedef enum ingest_kind {
    INGEST_SCADA, INGEST_OUTAGE_JSON, INGEST_OUTAGE_UKPN_CSV, INGEST_OPENMETEO, INGEST_SCADA_ZMQ
} ingest_kind;

typedef struct ingest_source {
    char name[65];
    ingest_kind kind;
    char directory[1024];
    char url[2048];
    char endpoint[512];     /* scada_zmq: the PULL socket's bind endpoint */
    char curve_secret_key[1024];    /* scada_zmq: server key file (pcf-keygen); "" = plain */
    char curve_allowlist[1024];     /* scada_zmq: admitted gateway public keys */
    char model[65];
    char locations[INGEST_MAX_LOCATIONS][65];
    size_t nlocations;
    int poll_seconds;       /* 1..86400, default 60 */
    int timeout_seconds;    /* 1..600, default 30 */
    int retries;            /* 0..10, default 3 */
    int backoff_ms;         /* 0..600000, default 1000 */
    int has_kind;
} ingest_source;

typedef struct ingest_config {
    char conninfo[1024];
    ingest_source sources[INGEST_MAX_SOURCES];
    size_t nsources;
    int metrics_port;               /* 0..65535, 0 = no endpoint; default INGEST_METRICS_PORT */
    char metrics_address[64];       /* default 127.0.0.1 */
} ingest_config;

/* Reads and checks path into *cfg.  PCF_ERR_IO when it cannot be read,
 * PCF_ERR_PARSE with "path:line: reason" otherwise. */
pcf_rc ingest_config_load(const char *path, ingest_config *cfg, pcf_error *err);

/* The source with that name, or NULL. */
const ingest_source *ingest_config_find(const ingest_config *cfg, const char *name);

/* "scada", "outage_json", ... */
const char *ingest_kind_name(ingest_kind k);

#endif
