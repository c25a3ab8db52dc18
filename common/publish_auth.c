/*
 * publish_auth.c -- key files, allowlist and ZAP handler (see publish_auth.h).
 *
 * Files are read whole (bounded to 8 MiB: 100,000 keys with comments) and
 * split into lines; every line is checked, and the first bad one fails the
 * load with path:line, so a typo never silently locks a client out or in.
 */
#include "publish_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define FILE_MAX (8u << 20)
#define LINE_MAX_LEN 1024

struct publish_allowlist {
    size_t n;
    uint8_t (*keys)[32];
};

int publish_auth_key_valid(const char *s)
{
    if (strlen(s) != PUBLISH_KEY_Z85_LEN) return 0;
    uint8_t raw[32];
    return zmq_z85_decode(raw, s) != NULL;
}

/* Reads a whole file into a NUL-terminated buffer (caller frees). */
static pcf_rc s_slurp(const char *path, char **out, size_t *len, pcf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = malloc(FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return pcf_error_set(err, PCF_ERR_IO, "%s: read error", path);
    }
    if (n > FILE_MAX) {
        free(buf);
        return pcf_error_set(err, PCF_ERR_LIMIT, "%s: larger than %u bytes", path, FILE_MAX);
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: contains a NUL byte", path);
    }
    *out = buf;
    *len = n;
    return PCF_OK;
}

/* Trims spaces, tabs and a trailing CR in place; returns the start. */
static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

pcf_rc publish_auth_load_key(const char *path, char *public_z85, char *secret_z85, pcf_error *err)
{
    char *buf;
    size_t len;
    pcf_rc rc = s_slurp(path, &buf, &len, err);
    if (rc != PCF_OK) return rc;
    public_z85[0] = '\0';
    if (secret_z85) secret_z85[0] = '\0';
    int line = 0;
    char *save = NULL;
    for (char *l = buf; l && rc == PCF_OK; l = save) {
        char *nl = strchr(l, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        line++;
        if (strlen(l) > LINE_MAX_LEN) {
            rc = pcf_error_set(err, PCF_ERR_LIMIT, "%s:%d: line longer than %d bytes", path, line, LINE_MAX_LEN);
            break;
        }
        char *t = s_trim(l);
        if (!*t || *t == '#') continue;
        char *eq = strchr(t, '=');
        if (!eq) {
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: expected 'public-key = KEY' or 'secret-key = KEY'",
                               path, line);
            break;
        }
        *eq = '\0';
        char *name = s_trim(t), *val = s_trim(eq + 1);
        char *dst;
        if (strcmp(name, "public-key") == 0) dst = public_z85;
        else if (strcmp(name, "secret-key") == 0) dst = secret_z85;
        else {
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: unknown key name \"%.40s\"", path, line, name);
            break;
        }
        if (!publish_auth_key_valid(val)) {
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: %s is not a 40-character Z85 key", path, line, name);
            break;
        }
        if (dst) memcpy(dst, val, PUBLISH_KEY_Z85_LEN + 1);
    }
    free(buf);
    if (rc == PCF_OK && !public_z85[0]) rc = pcf_error_set(err, PCF_ERR_PARSE, "%s: no public-key line", path);
    if (rc == PCF_OK && secret_z85 && secret_z85[0]) {
        /* The pair must match, or the server would present a key nobody trusts. */
        char derived[PUBLISH_KEY_Z85_LEN + 1];
        if (zmq_curve_public(derived, secret_z85) != 0 || strcmp(derived, public_z85) != 0)
            rc = pcf_error_set(err, PCF_ERR_INVALID, "%s: public-key does not belong to secret-key", path);
    }
    return rc;
}

static pcf_rc s_write_file(const char *path, int mode, const char *text, pcf_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int bad = w < 0 || (size_t)w != n || fsync(fd) != 0;
    if (close(fd) != 0) bad = 1;
    if (bad) {
        unlink(path);
        return pcf_error_set(err, PCF_ERR_IO, "%s: write failed", path);
    }
    return PCF_OK;
}

pcf_rc publish_auth_write_keypair(const char *basename, const char *comment, pcf_error *err)
{
    char pub[PUBLISH_KEY_Z85_LEN + 1], sec[PUBLISH_KEY_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0)
        return pcf_error_set(err, PCF_ERR_INTERNAL, "zmq_curve_keypair: %s (libzmq built without CURVE?)",
                             zmq_strerror(zmq_errno()));
    char kpath[4096], ppath[4096], text[1024];
    if (snprintf(kpath, sizeof kpath, "%s.key", basename) >= (int)sizeof kpath ||
        snprintf(ppath, sizeof ppath, "%s.pub", basename) >= (int)sizeof ppath)
        return pcf_error_set(err, PCF_ERR_LIMIT, "%s: path too long", basename);
    if (strchr(comment, '\n')) return pcf_error_set(err, PCF_ERR_INVALID, "comment: must be one line");
    snprintf(text, sizeof text,
             "# pcf CurveZMQ key pair: %.200s\n# SECRET: keep this file readable only by its owner\n"
             "public-key = %s\nsecret-key = %s\n", comment, pub, sec);
    pcf_rc rc = s_write_file(kpath, 0600, text, err);
    if (rc != PCF_OK) return rc;
    snprintf(text, sizeof text, "# pcf CurveZMQ public key: %.200s\npublic-key = %s\n", comment, pub);
    rc = s_write_file(ppath, 0644, text, err);
    if (rc != PCF_OK) unlink(kpath);
    return rc;
}

static int s_cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

pcf_rc publish_allowlist_load(const char *path, publish_allowlist **out, pcf_error *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    pcf_rc rc = s_slurp(path, &buf, &len, err);
    if (rc != PCF_OK) return rc;
    publish_allowlist *a = calloc(1, sizeof *a);
    size_t cap = 64;
    if (a) a->keys = malloc(cap * 32);
    if (!a || !a->keys) {
        free(a);
        free(buf);
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", path);
    }
    int line = 0;
    char *next = NULL;
    for (char *l = buf; l; l = next) {
        char *nl = strchr(l, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        line++;
        if (strlen(l) > LINE_MAX_LEN) {
            rc = pcf_error_set(err, PCF_ERR_LIMIT, "%s:%d: line longer than %d bytes", path, line, LINE_MAX_LEN);
            break;
        }
        char *t = s_trim(l);
        /* '#' is a Z85 digit, but never the first of a 32-byte key: its
         * value 84 * 85^4 exceeds 2^32, so comment lines are unambiguous. */
        if (!*t || *t == '#') continue;
        size_t kl = strcspn(t, " \t");
        if (kl != PUBLISH_KEY_Z85_LEN) {
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: expected a 40-character Z85 public key first", path,
                               line);
            break;
        }
        char z[PUBLISH_KEY_Z85_LEN + 1];
        memcpy(z, t, PUBLISH_KEY_Z85_LEN);
        z[PUBLISH_KEY_Z85_LEN] = '\0';
        if (a->n == PUBLISH_ALLOWLIST_MAX) {
            rc = pcf_error_set(err, PCF_ERR_LIMIT, "%s:%d: more than %d keys", path, line, PUBLISH_ALLOWLIST_MAX);
            break;
        }
        if (a->n == cap) {
            cap *= 2;
            void *p = realloc(a->keys, cap * 32);
            if (!p) {
                rc = pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            a->keys = p;
        }
        if (!zmq_z85_decode(a->keys[a->n], z)) {
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: not a Z85 key", path, line);
            break;
        }
        a->n++;
    }
    free(buf);
    if (rc != PCF_OK) {
        publish_allowlist_destroy(&a);
        return rc;
    }
    qsort(a->keys, a->n, 32, s_cmp_key);
    *out = a;
    return PCF_OK;
}

void publish_allowlist_destroy(publish_allowlist **a)
{
    if (!*a) return;
    free((*a)->keys);
    free(*a);
    *a = NULL;
}

size_t publish_allowlist_count(const publish_allowlist *a)
{
    return a ? a->n : 0;
}

int publish_allowlist_contains(const publish_allowlist *a, const uint8_t key[32])
{
    return a && a->n && bsearch(key, a->keys, a->n, 32, s_cmp_key) != NULL;
}

/* ---- ZAP (RFC 27) ------------------------------------------------------------ */

#define ZAP_FRAMES 7

static int s_send(void *s, const void *p, size_t n, int more)
{
    return zmq_send(s, p, n, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

pcf_rc publish_auth_zap(void *zap, const publish_allowlist *allow, int *admitted, char *client_z85, pcf_error *err)
{
    /* Request: version, request_id, domain, address, identity, mechanism,
     * credentials...; we keep the first 7 frames, bounded, and drain the rest. */
    char frames[ZAP_FRAMES][256];
    size_t sizes[ZAP_FRAMES] = {0};
    int n = 0, more = 1;
    *admitted = 0;
    client_z85[0] = '\0';
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (n == 0) return PCF_OK;   /* spurious wake-up */
            return pcf_error_set(err, PCF_ERR_NET, "zap: %s", zmq_strerror(zmq_errno()));
        }
        if (n < ZAP_FRAMES) {
            size_t sz = zmq_msg_size(&m);
            sizes[n] = sz < sizeof frames[n] ? sz : sizeof frames[n];
            memcpy(frames[n], zmq_msg_data(&m), sizes[n]);
        }
        n++;
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    const char *status = "400", *text = "client key not allowed";
    if (n < 6 || sizes[0] != 3 || memcmp(frames[0], "1.0", 3) != 0) {
        text = "malformed ZAP request";
    } else if (sizes[5] == 5 && memcmp(frames[5], "CURVE", 5) == 0 && n >= 7 && sizes[6] == 32) {
        zmq_z85_encode(client_z85, (const uint8_t *)frames[6], 32);
        if (publish_allowlist_contains(allow, (const uint8_t *)frames[6])) {
            status = "200";
            text = "OK";
            *admitted = 1;
        }
    } else {
        text = "only CURVE clients are admitted";
    }
    /* Reply: version, request_id, status code, status text, user id, metadata. */
    int bad = s_send(zap, "1.0", 3, 1) || s_send(zap, n > 1 ? frames[1] : "", n > 1 ? sizes[1] : 0, 1) ||
              s_send(zap, status, 3, 1) || s_send(zap, text, strlen(text), 1) ||
              s_send(zap, client_z85, *admitted ? strlen(client_z85) : 0, 1) || s_send(zap, "", 0, 0);
    if (bad) return pcf_error_set(err, PCF_ERR_NET, "zap reply: %s", zmq_strerror(zmq_errno()));
    return PCF_OK;
}
