/*
 * publish_auth.h -- CurveZMQ key files, the client allowlist and the ZAP
 * handler that enforces it (docs/publishing.md).
 *
 * Key files are text written by pcf-keygen:
 *     # comment lines
 *     public-key = <40 Z85 characters>
 *     secret-key = <40 Z85 characters>      (only in the secret file NAME.key)
 * The allowlist has one client public key per line, the key first and an
 * optional comment after it naming the owner; '#' starts a comment line
 * (no key can start with '#', see publish_auth.c).
 *
 * The ZAP handler (RFC 27) is a REP socket on inproc://zeromq.zap.01 of the
 * publisher's context: libzmq asks it about every Curve handshake, and
 * publish_auth_zap() answers 200 for keys in the allowlist, 400 otherwise.
 * The allowlist is a sorted array of 32-byte keys searched by bsearch, so a
 * reload swaps one pointer and a handshake costs a few comparisons.
 */
#ifndef PCF_PUBLISH_AUTH_H
#define PCF_PUBLISH_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define PUBLISH_KEY_Z85_LEN 40
#define PUBLISH_ALLOWLIST_MAX 100000   /* keys */

typedef struct publish_allowlist publish_allowlist;

/* Reads a key file.  public_z85 and secret_z85 get 41 bytes each (NUL
 * terminated); secret_z85 may be NULL, and is set to "" when the file has no
 * secret key.  Errors name path:line. */
pcf_rc publish_auth_load_key(const char *path, char *public_z85, char *secret_z85, pcf_error *err);

/* Writes NAME.key (mode 0600, both keys) and NAME.pub (public key) for a
 * fresh key pair; refuses to overwrite existing files. */
pcf_rc publish_auth_write_keypair(const char *basename, const char *comment, pcf_error *err);

/* True when s is a valid 40-character Z85 key. */
int publish_auth_key_valid(const char *s);

/* Parses an allowlist file.  Errors name path:line; an empty file is valid
 * (nobody is admitted). */
pcf_rc publish_allowlist_load(const char *path, publish_allowlist **out, pcf_error *err);
void publish_allowlist_destroy(publish_allowlist **a);
size_t publish_allowlist_count(const publish_allowlist *a);
int publish_allowlist_contains(const publish_allowlist *a, const uint8_t key[32]);

/* Answers one pending ZAP request on the REP socket `zap` (call when it is
 * readable).  Admits CURVE clients whose key is in `allow`; refuses the
 * rest (and any other mechanism).  *admitted tells which, for logging;
 * client_z85 (41 bytes) gets the client's key when there was one. */
pcf_rc publish_auth_zap(void *zap, const publish_allowlist *allow, int *admitted, char *client_z85,
                        pcf_error *err);

#endif
